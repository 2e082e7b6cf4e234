#!/usr/bin/env bash
# Benchmark: SIGHUP reload of the 500 virtual servers x 8 real servers + 50 VRRP instances
# configuration (contrib/bench/gen_config.py), keepalived 2.2.7 (Debian's) against Vigil, in
# one boot of the kernel lab (QEMU TCG, 1 vCPU, Debian 12's kernel with IPVS), alternating the
# daemons ROUNDS times. For each: the time from SIGHUP of an unchanged file until the daemon
# reports the reload done, the generic-netlink (IPVS) requests it sends for it (an nlmon device; target
# 0), and the time from SIGHUP of a file with one more virtual server until the daemon reports
# it done and until ipvsadm shows the new service whole. See reload.guest.sh for how.
#
# delay_loop is 60 s here, not gen_config's 6: under TCG a TCP check costs about 2.5 ms of the
# single vCPU, and 4,000 checks every 6 s would saturate it and time the checkers instead of
# the reload. Absolute figures are TCG figures; compare the ratios.
# Writes bench-out/reload.json and prints a summary and a Markdown row for BENCHMARKS.md.
#
# Environment: SERVICES (500), REALS (8), INSTANCES (50), DELAY_LOOP (60), SETTLE (8 s),
# ROUNDS (2; medians reported), VIGIL_BIN_DIR (.build/release), REFERENCE_ONLY=1,
# KERNEL_LAB_TIMEOUT (1200), CC. Needs root, python3, a C compiler and libc6-dev and keepalived.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERVICES=${SERVICES:-500}
REALS=${REALS:-8}
INSTANCES=${INSTANCES:-50}
DELAY_LOOP=${DELAY_LOOP:-60}
SETTLE=${SETTLE:-8}
ROUNDS=${ROUNDS:-2}
keepalived=/usr/sbin/keepalived
# shellcheck source=SCRIPTDIR/kernel-lab-bench.sh
. contrib/bench/kernel-lab-bench.sh
bench_init reload

bench_need_root
bench_find_cc
[ -x "$keepalived" ] || die "no $keepalived (apt-get install keepalived)"
extra_bins="$keepalived"
bench_need_vigil

bench_make_work reload
bench_build_benchtool
bench_copy_to_guest contrib/bench/reload.guest.sh contrib/bench/guest-common.sh
python3 contrib/bench/gen_config.py "$work/base.conf" "$SERVICES" "$REALS" "$INSTANCES" "$DELAY_LOOP" 0
python3 contrib/bench/gen_config.py "$work/plus.conf" "$SERVICES" "$REALS" "$INSTANCES" "$DELAY_LOOP" 1

# Both must accept both files (in a namespace with eth0, as in the guest), or the comparison
# means nothing.
ns=vigil-bench-reload-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$work"' EXIT
ip -n "$ns" link add eth0 type veth peer name peer0
for f in base plus; do
    ip netns exec "$ns" "$keepalived" -t -f "$work/$f.conf" || die "keepalived -t rejects $f.conf"
    [ "$REFERENCE_ONLY" = 1 ] || ip netns exec "$ns" "$bindir/vigil" -t -f "$work/$f.conf" || die "vigil -t rejects $f.conf"
done
vigil_guest=
[ "$REFERENCE_ONLY" = 1 ] || vigil_guest=$bindir/vigil
bench_write_env SERVICES REALS INSTANCES DELAY_LOOP SETTLE ROUNDS

echo "reload: $SERVICES virtual servers x $REALS real servers + $INSTANCES VRRP instances, in the kernel lab"
KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-1200}
bench_run_guest "$work/reload.guest.sh"
bench_result_json
python3 - "$json" "$out/reload.json" <<'PY'
import json, statistics, sys
data = json.loads(sys.argv[1])
res = data["results"]
summary = {}
for name, rounds in res.items():
    summary[name] = {k: statistics.median(r[k] for r in rounds) for k in
                     ("unchanged_ms", "unchanged_genl_messages", "unchanged_rtnl_messages", "added_service_done_ms",
                      "added_service_in_table_ms", "removal_genl_messages")}
    summary[name]["rounds"] = len(rounds)
    summary[name]["table_whole_after"] = all(r["table_whole_after"] for r in rounds)
data["summary"] = summary
k, v = summary.get("keepalived"), summary.get("vigil")
if k and v:
    data["ratio_unchanged"] = round(v["unchanged_ms"] / k["unchanged_ms"], 4)
    data["ratio_added_in_table"] = round(v["added_service_in_table_ms"] / k["added_service_in_table_ms"], 4)
json.dump(data, open(sys.argv[2], "w"), indent=1)
print(f"\nreload: wrote {sys.argv[2]} (host load {data['host']['loadavg_before']} -> {data['host']['loadavg_after']})")
for name, rounds in res.items():
    for i, r in enumerate(rounds, 1):
        print(f"{name:>10} #{i}: unchanged {r['unchanged_ms']:.0f} ms, {r['unchanged_genl_messages']} IPVS messages; "
              f"one service added: done {r['added_service_done_ms']:.0f} ms, in the table {r['added_service_in_table_ms']:.0f} ms; "
              f"removing it again: {r['removal_genl_messages']} IPVS messages"
              + ("" if r["table_whole_after"] else "  ** table not whole **"))
if k and v:
    print(f"| reload of an unchanged file ({data['services']} VS x {data['reals']} RS + {data['instances']} instances, TCG guest, "
          f"median of {min(k['rounds'], v['rounds'])}) | keepalived {k['unchanged_ms']:.0f} ms, {k['unchanged_genl_messages']:.0f} IPVS messages "
          f"| vigil {v['unchanged_ms']:.0f} ms, {v['unchanged_genl_messages']:.0f} IPVS messages | {data['ratio_unchanged']:.2f} |")
    print(f"| reload adding one virtual server: SIGHUP until ipvsadm shows it | keepalived {k['added_service_in_table_ms']:.0f} ms "
          f"| vigil {v['added_service_in_table_ms']:.0f} ms | {data['ratio_added_in_table']:.2f} |")
PY
bench_exit_status
