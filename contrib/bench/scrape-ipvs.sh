#!/usr/bin/env bash
# Benchmark: the CPU of one `/metrics` scrape with IPVS's counters in it, 50 VRRP instances and
# 100 virtual servers x 10 real servers (1,000), the case `status.sh` cannot measure on this
# kernel (no IPVS here, so its scrape has no keepalived_lvs_* series and no IPVS dump).
#
# One boot of the kernel lab (contrib/kernel-lab: QEMU TCG, 1 vCPU, Debian 12's 6.1 kernel with
# IPVS) runs contrib/bench/scrape-ipvs.guest.sh: Vigil on full.conf with the table whole (each
# scrape dumps IPVS's 100 services and 1,000 destinations with their STATS64 counters and
# renders keepalived_lvs_vip_* / keepalived_lvs_rs_*), and on vrrp.conf (the same 50 instances,
# no virtual server), ROUNDS rounds alternating; and, as the reference for reading the same
# counters, `ipvsadm -Ln --stats --exact` on the same table. TCG runs code several times slower
# than the host, so the vrrp.conf scrape is measured here on the host too, with the same client
# (`benchtool scrape`) and binary: host/guest of that scrape is this run's TCG factor, and the
# guest's full.conf figure times that factor is the host estimate the target (< 1 ms) is read
# against. Both figures are written; the guest's is measured, the host's is derived.
# Writes bench-out/scrape-ipvs.json and prints a Markdown row.
#
# Environment: ROUNDS (3), SCRAPES (100), IDLE (10 s), IPVSADM_RUNS (20), VIGIL_BIN_DIR
# (.build/release), KERNEL_LAB_TIMEOUT (900), CC. Needs root, python3, a C compiler and libc6-dev
# (static libc) for benchtool.c.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
SCRAPES=${SCRAPES:-100}
IDLE=${IDLE:-10}
IPVSADM_RUNS=${IPVSADM_RUNS:-20}
SERVICES=100
REALS=10
INSTANCES=50
# delay_loop 60: 1,000 TCP_CHECKs every 60 s are 17 connects a second, which the idle rate
# subtracted from every scrape's CPU takes in (at gen_config's 6 s they would be a third of the
# TCG vCPU and the subtraction would be noise).
DELAY_LOOP=60
export KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-900}
# shellcheck source=SCRIPTDIR/kernel-lab-bench.sh
. contrib/bench/kernel-lab-bench.sh
bench_init scrape-ipvs

bench_need_root
bench_find_cc
bench_need_vigil

bench_make_work scrape
NS=vbench-scrape-ipvs-$$
cleanup() {
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
bench_build_benchtool
bench_copy_to_guest contrib/bench/scrape-ipvs.guest.sh contrib/bench/guest-common.sh
python3 contrib/bench/gen_config.py "$work/full.conf" "$SERVICES" "$REALS" "$INSTANCES" "$DELAY_LOOP" 0
python3 contrib/bench/gen_config.py "$work/vrrp.conf" 0 0 "$INSTANCES"
bench_check_vigil_conf "$work/full.conf"

# --- the host: vrrp.conf, the same client, ROUNDS rounds ---------------------------------------
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add eth0 type veth peer name peer0
ip -n "$NS" link set peer0 up
ip -n "$NS" link set eth0 up
ip -n "$NS" addr add 10.200.0.1/24 dev eth0
host_rounds=()
for round in $(seq 1 "$ROUNDS"); do
    ip netns exec "$NS" "$bindir/vigil" -n -l -f "$work/vrrp.conf" -p "$work/vigil.pid" --control "$work/vigil.sock" \
        --metrics 127.0.0.1:9165 >"$work/host-vigil.log" 2>&1 &
    dpid=$!
    sleep 5
    ip netns exec "$NS" "$work/benchtool" scrape 9165 3 >/dev/null
    # ns of CPU: schedstat of every thread (the host's ticks are too coarse for a fast scrape).
    cpu_ns() { local t total=0; for t in /proc/$dpid/task/*/schedstat; do total=$((total + $(awk '{ print $1 }' "$t"))); done; echo $total; }
    i0=$(cpu_ns); w0=$(date +%s%N); sleep "$IDLE"; i1=$(cpu_ns); w1=$(date +%s%N)
    c0=$(cpu_ns); s0=$(date +%s%N)
    ip netns exec "$NS" "$work/benchtool" scrape 9165 $((SCRAPES * 10)) >/dev/null
    c1=$(cpu_ns); s1=$(date +%s%N)
    kill -TERM "$dpid"; wait "$dpid" 2>/dev/null || true
    ms=$(awk -v i=$((i1 - i0)) -v iw=$((w1 - w0)) -v c=$((c1 - c0)) -v sw=$((s1 - s0)) -v n=$((SCRAPES * 10)) \
        'BEGIN { printf "%.4f", (c - i / iw * sw) / n / 1e6 }')
    echo "host round $round, vrrp.conf: $ms ms a scrape"
    host_rounds+=("$ms")
done

bench_write_env SERVICES REALS INSTANCES SCRAPES ROUNDS IDLE IPVSADM_RUNS
echo "scrape-ipvs: $INSTANCES instances + $SERVICES x $REALS real servers, in the kernel lab"
bench_run_guest "$work/scrape-ipvs.guest.sh"
bench_result_json
python3 - "$json" "$out/scrape-ipvs.json" "${host_rounds[*]}" <<'PY'
import json, statistics, sys
data = json.loads(sys.argv[1])
host = [float(x) for x in sys.argv[3].split()]
med = statistics.median
guest = data["guest"]
full = [r for r in guest.get("full", []) if r["valid"]]
vrrp = [r for r in guest.get("vrrp", []) if r["valid"]]
data["host_vrrp_ms_per_scrape"] = host
summary = {}
if full and vrrp:
    g_full = med([r["cpu_ms_per_scrape"] for r in full])
    g_vrrp = med([r["cpu_ms_per_scrape"] for r in vrrp])
    factor = med(host) / g_vrrp
    summary = {"guest_full_ms": g_full, "guest_vrrp_ms": g_vrrp, "host_vrrp_ms": med(host), "tcg_factor": round(factor, 4),
               "host_estimate_full_ms": round(g_full * factor, 4),
               "guest_ipvsadm_ms": med([r["ipvsadm_cpu_ms_per_run"] for r in full]),
               "series": med([r["samples"] for r in full]), "bytes": med([r["bytes"] for r in full])}
data["summary"] = summary
json.dump(data, open(sys.argv[2], "w"), indent=1)
for name, rounds in guest.items():
    for i, r in enumerate(rounds, 1):
        print(f"guest {name} #{i}: {r['cpu_ms_per_scrape']:.2f} ms a scrape, {r['samples']} samples, {r['bytes']} bytes"
              + (f", ipvsadm -Ln --stats --exact {r['ipvsadm_cpu_ms_per_run']:.1f} ms" if name == "full" else "")
              + ("" if r["valid"] else "  ** NOT VALID **"))
if summary:
    s = summary
    print(f"| CPU of one scrape with IPVS's counters, 50 instances + 1,000 real servers (TCG guest; host estimate by the "
          f"guest/host factor {1 / s['tcg_factor']:.1f} of the scrape without IPVS) | ipvsadm -Ln --stats --exact: "
          f"{s['guest_ipvsadm_ms']:.1f} ms (guest) | {s['guest_full_ms']:.2f} ms (guest), {s['host_estimate_full_ms']:.3f} ms (host estimate) |")
PY
bench_exit_status
