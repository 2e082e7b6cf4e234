#!/usr/bin/env bash
# Benchmark: time to install an IPVS table of SERVICES virtual services x REALS real servers
# (default 1000 x 10: TCP, rr, NAT, real servers 10.20.x.y, which are not local to the guest),
# ipvsadm-restore (`ipvsadm -R`, what Debian's ipvsadm-restore script runs after `ipvsadm -C`)
# against Vigil reading an equivalent keepalived.conf with no health checkers (real servers
# without checkers are always alive, so the whole table goes in at start).
#
# One boot of the kernel lab (contrib/kernel-lab: QEMU TCG, 1 vCPU, Debian 12's 6.1 kernel with
# IPVS) runs contrib/bench/ipvs-apply.guest.sh, which for REPS rounds, interleaved:
#   - ipvsadm: CLOCK_MONOTONIC before and after `ipvsadm -R < rules` (the exec and startup of
#     ipvsadm included), measured in the guest;
#   - Vigil:   CLOCK_MONOTONIC from just before spawning `vigil -n -l -f CONF` until its log shows
#     `IPVS: table programmed:` (inotify on the log, the ms Vigil reports is kept too); then
#     SIGTERM by pid, the time to exit, and whether the table was removed;
# and after each side checks that `ipvsadm -Ln` shows SERVICES services and SERVICES*REALS
# destinations (a round fails otherwise), then `ipvsadm -C`. An untimed warm-up with a 10-service
# table runs both first (TCG translates a program's code on its first run).
# Absolute times are TCG times (a dynamically linked exec costs ~0.1 s); compare the ratio. The
# guest's clock follows the host's, so a loaded host stretches every figure (ipvsadm -R of the
# default table took 5.8 to 13.9 s on a shared 2-core host): rounds are interleaved so that
# both sides see the same noise, and the host's load average is recorded in the JSON.
# Writes bench-out/ipvs-apply.json and prints a summary and a Markdown row for BENCHMARKS.md.
# The host steps it shares with tcpcheck-cpu.sh (checks, benchtool, the work dir, the kernel-lab
# run, the BENCH-JSON line, the host's load) are in contrib/bench/kernel-lab-bench.sh.
#
# Environment: REPS (5), SERVICES (1000), REALS (10), VIGIL_BIN_DIR (.build/release: vigil and
# vigild), REFERENCE_ONLY=1 (ipvsadm only, no Vigil needed), KERNEL_LAB_TIMEOUT (600), CC.
# Needs root, python3, a C compiler (gcc, else clang) and libc6-dev (static libc) for benchtool.c.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-5}
SERVICES=${SERVICES:-1000}
REALS=${REALS:-10}
# shellcheck source=SCRIPTDIR/kernel-lab-bench.sh
. contrib/bench/kernel-lab-bench.sh
bench_init ipvs-apply

bench_need_root
bench_find_cc
bench_need_vigil

bench_make_work ipvs
bench_build_benchtool
bench_copy_to_guest contrib/bench/ipvs-apply.guest.sh

# The same table twice: ipvsadm -R input and keepalived.conf (plus a small one for warming up).
# Real server i of service s is 10.20.(k / 250).(k % 250 + 1) with k = s * REALS + i: all
# distinct, none local.
python3 - "$work" "$SERVICES" "$REALS" <<'PY'
import sys
work, services, reals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def write(name, services):
    rules, conf = [], ["global_defs {", "    router_id bench-ipvs-apply", "}"]
    for s in range(services):
        vs = f"10.31.{s // 250}.{s % 250 + 1}"
        rules.append(f"-A -t {vs}:80 -s rr")
        conf += [f"virtual_server {vs} 80 {{", "    lb_algo rr", "    lb_kind NAT", "    protocol TCP"]
        for i in range(reals):
            k = s * reals + i
            rs = f"10.20.{k // 250}.{k % 250 + 1}"
            rules.append(f"-a -t {vs}:80 -r {rs}:80 -m -w 1")
            conf += [f"    real_server {rs} 80 {{", "        weight 1", "    }"]
        conf.append("}")
    open(f"{work}/{name}.rules", "w").write("\n".join(rules) + "\n")
    open(f"{work}/{name}.conf", "w").write("\n".join(conf) + "\n")
write("ipvs-apply", services)
# An untimed warm-up with a small table for both sides: under TCG the first run of a program
# also pays for translating its code (a first Vigil run took 850 ms where the next took 350).
write("ipvs-apply-warmup", min(services, 10))
PY

# A configuration Vigil rejects makes the comparison meaningless: stop here, on the host.
bench_check_vigil_conf "$work/ipvs-apply.conf"
bench_write_env REPS SERVICES REALS

echo "ipvs-apply: $SERVICES services x $REALS real servers, $REPS rounds, in the kernel lab"
bench_run_guest "$work/ipvs-apply.guest.sh"
bench_result_json
python3 - "$json" "$out/ipvs-apply.json" <<'PY'
import json, sys
data = json.loads(sys.argv[1])
json.dump(data, open(sys.argv[2], "w"), indent=1)
ref = data["ipvsadm_restore"]
print(f"\nipvs-apply: wrote {sys.argv[2]}")
print(f"ipvsadm -R: median {ref['median_ms']:.0f} ms over {len(ref['ms'])} runs {ref['ms']}")
v = data.get("vigil")
if v and v.get("ms"):
    print(f"vigil:      median {v['median_ms']:.0f} ms (spawn to 'IPVS: table programmed:'), "
          f"Vigil's own figure median {v['reported_median_ms']} ms, runs {v['ms']}")
    print(f"vigil/ipvsadm-restore: {data['ratio_vigil_over_ipvsadm']:.3f}")
    print(f"| IPVS table {data['services']} VS x {data['reals']} RS (TCG guest, median of "
          f"{len(ref['ms'])}) | ipvsadm-restore {ref['median_ms']:.0f} ms | vigil "
          f"{v['median_ms']:.0f} ms | vigil/ipvsadm-restore {data['ratio_vigil_over_ipvsadm']:.2f} |")
elif v:
    print(f"vigil: FAILED: {v.get('error')}")
PY
bench_exit_status
