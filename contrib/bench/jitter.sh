#!/usr/bin/env bash
# Benchmark: does a busy checker delay the adverts? Vigil (one process: VRRP and the checkers share
# the loop) against keepalived 2.2.7 (separate VRRP and checker processes) in one boot of the
# kernel lab. A MASTER instance at advert_int 1 on a dummy interface, alone and then with
# SERVICES x REALS HTTP_GETs every DELAY_LOOP s and their IPVS table; the kernel's timestamp of
# every advert for WINDOW s (contrib/bench/benchtool.c `adverts`). Jitter = |interval - 1 s|.
#
# Under TCG the vCPU saturates near 700 TCP connects a second, so the checker load is the
# HTTP_GET benchmark's (200 fetches a second), not the 2,000 a second a native director runs.
#
# RT_PRIORITY=N adds `vrrp_rt_priority N` to both daemons' global_defs (keepalived's VRRP child and
# Vigil's loop thread at SCHED_RR N), the setting a director that must keep its adverts on time uses.
#
# Environment: SERVICES (200), REALS (10), DELAY_LOOP (10), WARMUP (10), WINDOW (30), ROUNDS (2), RT_PRIORITY (unset),
# VIGIL_BIN_DIR (.build/release), KERNEL_LAB_TIMEOUT (900). Writes bench-out/jitter.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-200}
REALS=${REALS:-10}
DELAY_LOOP=${DELAY_LOOP:-10}
WARMUP=${WARMUP:-10}
WINDOW=${WINDOW:-30}
ROUNDS=${ROUNDS:-2}
keepalived=/usr/sbin/keepalived
# shellcheck source=SCRIPTDIR/kernel-lab-bench.sh
. contrib/bench/kernel-lab-bench.sh
bench_init jitter
bench_need_root
bench_find_cc
[ -x "$keepalived" ] || die "no $keepalived (apt-get install keepalived)"
extra_bins=$keepalived
bench_need_vigil
bench_make_work jitter
bench_build_benchtool
bench_copy_to_guest contrib/bench/jitter.guest.sh contrib/bench/guest-common.sh

python3 - "$work" "$SERVICES" "$REALS" "$DELAY_LOOP" "${RT_PRIORITY:-0}" <<'PY'
import hashlib, sys
work = sys.argv[1]
services, reals, delay, rt = map(int, sys.argv[2:])
digest = hashlib.md5(b"<html>ok</html>").hexdigest()
head = ["global_defs {", "    router_id bench-jitter"] + ([f"    vrrp_rt_priority {rt}"] if rt else []) + ["}",
        "vrrp_instance VI_1 {", "    state MASTER", "    interface vr0", "    virtual_router_id 60", "    priority 150",
        "    advert_int 1", "    virtual_ipaddress {", "        10.60.0.100/24", "    }", "}"]
open(f"{work}/jitter-idle.conf", "w").write("\n".join(head) + "\n")
conf = list(head)
for s in range(services):
    conf += [f"virtual_server 10.31.{s // 250}.{s % 250 + 1} 80 {{", f"    delay_loop {delay}", "    lb_algo rr", "    lb_kind NAT", "    protocol TCP"]
    for r in range(reals):
        conf += [f"    real_server 10.30.0.{r + 1} 80 {{", "        weight 1", "        HTTP_GET {", "            connect_timeout 1",
                 "            url {", "                path /", f"                digest {digest}", "            }", "        }", "    }"]
    conf.append("}")
open(f"{work}/jitter-checks.conf", "w").write("\n".join(conf) + "\n")
PY
# Both must accept the files where vr0 exists: a namespace of our own with a veth of that name.
ns=vbench-jitter-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
ip -n "$ns" link add vr0 type veth peer name vr0peer
for conf in jitter-idle jitter-checks; do
    ip netns exec "$ns" "$keepalived" -t -f "$work/$conf.conf" || die "keepalived -t rejects $conf.conf"
    vigil_guest=
    ip netns exec "$ns" "$bindir/vigil" -t -f "$work/$conf.conf" || die "vigil -t rejects $conf.conf"
done
ip netns del "$ns"
vigil_guest=$bindir/vigil
bench_write_env SERVICES REALS DELAY_LOOP WARMUP WINDOW ROUNDS
echo "jitter: one MASTER instance, alone and with $((SERVICES * REALS)) HTTP_GETs every $DELAY_LOOP s, in the kernel lab"
KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-900} bench_run_guest "$work/jitter.guest.sh"
bench_result_json
python3 - "$json" "$out/jitter.json" <<'PY'
import json, statistics, sys
data = json.loads(sys.argv[1])
summary = {}
for key, rounds in data["results"].items():
    ok = [r for r in rounds if r.get("valid")]
    if not ok:
        continue
    summary[key] = {k: round(statistics.median(r[k] for r in ok), 1) for k in ("p50_us", "p99_us", "max_us", "mean_interval_excess_us")}
    summary[key]["rounds"] = len(ok)
data["summary"] = summary
json.dump(data, open(sys.argv[2], "w"), indent=1)
print(f"jitter: wrote {sys.argv[2]}")
for key, s in sorted(summary.items()):
    print(f"| {key} | p50 {s['p50_us']} µs | p99 {s['p99_us']} µs | max {s['max_us']} µs | mean interval excess {s['mean_interval_excess_us']} µs |")
PY
bench_exit_status
