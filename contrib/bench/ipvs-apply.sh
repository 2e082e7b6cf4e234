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
#
# Environment: REPS (5), SERVICES (1000), REALS (10), VIGIL_BIN_DIR (.build/release: vigil and
# vigild), REFERENCE_ONLY=1 (ipvsadm only, no Vigil needed), KERNEL_LAB_TIMEOUT (600), CC.
# Needs root, python3, a C compiler (gcc, else clang) and libc6-dev (static libc) for benchtool.c.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
REPS=${REPS:-5}
SERVICES=${SERVICES:-1000}
REALS=${REALS:-10}
REFERENCE_ONLY=${REFERENCE_ONLY:-0}
bindir=${VIGIL_BIN_DIR:-$root/.build/release}
out=$root/bench-out
mkdir -p "$out"

die() { echo "ipvs-apply: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (the kernel lab does)"
# benchtool.c is built static: any C compiler with glibc's libc.a (libc6-dev) will do; the
# Swift toolchain's clang is a fallback when gcc is absent.
cc=${CC:-$(command -v gcc || command -v clang || command -v cc || true)}
[ -n "$cc" ] || die "needs a C compiler (gcc, or the Swift toolchain's clang) and libc6-dev to build contrib/bench/benchtool.c"
extra_bins=
if [ "$REFERENCE_ONLY" != 1 ]; then
    for b in vigil vigild; do
        [ -x "$bindir/$b" ] || die "no $bindir/$b: run 'make release' first, set VIGIL_BIN_DIR, or set REFERENCE_ONLY=1"
    done
    extra_bins="$bindir/vigil $bindir/vigild"
fi

work=$(mktemp -d /tmp/vigil-bench-ipvs.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$cc" -O2 -static -o "$work/benchtool" contrib/bench/benchtool.c \
    || die "cannot build a static contrib/bench/benchtool.c with $cc (libc6-dev provides libc.a)"
cp contrib/bench/ipvs-apply.guest.sh "$work/"

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

vigil_guest=
if [ "$REFERENCE_ONLY" != 1 ]; then
    # A configuration Vigil rejects makes the comparison meaningless: stop here, on the host.
    "$bindir/vigil" -t -f "$work/ipvs-apply.conf" || die "vigil -t rejects the generated configuration"
    vigil_guest=$bindir/vigil
fi
cat >"$work/bench.env" <<EOF
REPS=$REPS
SERVICES=$SERVICES
REALS=$REALS
VIGIL='$vigil_guest'
EOF

echo "ipvs-apply: $SERVICES services x $REALS real servers, $REPS rounds, in the kernel lab"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
set +e
EXTRA_BINS="$extra_bins" EXTRA_DIR="$work" KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-600} \
    contrib/kernel-lab/run.sh "$work/ipvs-apply.guest.sh" | tee "$work/console.txt"
status=${PIPESTATUS[0]}
set -e
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

json=$(sed -n 's/^BENCH-JSON //p' "$work/console.txt" | tail -n 1)
[ -n "$json" ] || die "no BENCH-JSON line from the guest (kernel lab status $status)"
python3 - "$json" "$out/ipvs-apply.json" "$load_before" "$load_after" <<'PY'
import json, os, sys
data = json.loads(sys.argv[1])
# The guest's clock follows the host's: a busy host slows the guest down. Keep the host's load.
data["host"] = {"cpus": os.cpu_count(), "loadavg_before": sys.argv[3], "loadavg_after": sys.argv[4]}
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
[ "$status" = 0 ] || { echo "ipvs-apply: the guest run failed (see above)" >&2; exit 1; }
