# The host side the kernel-lab benchmarks share (ipvs-apply.sh, tcpcheck-cpu.sh), sourced by
# bash with `set -euo pipefail` from the repository root. A benchmark calls bench_init NAME, the
# checks (bench_need_root, bench_find_cc, bench_need_vigil), bench_make_work,
# bench_build_benchtool and bench_copy_to_guest, writes its inputs into $work, checks them
# (bench_check_vigil_conf), writes bench.env (bench_write_env), runs its guest script with
# bench_run_guest, reads the result with bench_result_json and ends with bench_exit_status.
# die exits 2 (a missing prerequisite, no result); bench_exit_status exits 1 if the guest failed.
#
# Globals: bench_name, root, out (bench-out/), bindir (VIGIL_BIN_DIR, default .build/release),
# REFERENCE_ONLY (0), extra_bins (binaries for the guest: EXTRA_BINS), cc, work (the guest's
# /work: EXTRA_DIR), vigil_guest, status, load_before, load_after, json.
# shellcheck shell=bash disable=SC2034 # the globals are the benchmark script's to read

die() { echo "$bench_name: $*" >&2; exit 2; }

# NAME: the prefix of every message. Creates bench-out/.
bench_init() {
    bench_name=$1
    root=$PWD
    REFERENCE_ONLY=${REFERENCE_ONLY:-0}
    bindir=${VIGIL_BIN_DIR:-$root/.build/release}
    out=$root/bench-out
    mkdir -p "$out"
    extra_bins=
}

bench_need_root() {
    [ "$(id -u)" = 0 ] || die "needs root (the kernel lab does)"
}

# Sets cc. benchtool.c is built static: any C compiler with glibc's libc.a (libc6-dev) will do;
# the Swift toolchain's clang is a fallback when gcc is absent.
bench_find_cc() {
    cc=${CC:-$(command -v gcc || command -v clang || command -v cc || true)}
    [ -n "$cc" ] || die "needs a C compiler (gcc, or the Swift toolchain's clang) and libc6-dev to build contrib/bench/benchtool.c"
}

# Unless REFERENCE_ONLY=1: vigil and vigild must be in bindir; both go to the guest.
bench_need_vigil() {
    [ "$REFERENCE_ONLY" != 1 ] || return 0
    local b
    for b in vigil vigild; do
        [ -x "$bindir/$b" ] || die "no $bindir/$b: run 'make release' first, set VIGIL_BIN_DIR, or set REFERENCE_ONLY=1"
    done
    extra_bins="${extra_bins:+$extra_bins }$bindir/vigil $bindir/vigild"
}

# TAG: names the temporary work dir (/tmp/vigil-bench-TAG.*), removed on exit.
bench_make_work() {
    work=$(mktemp -d "/tmp/vigil-bench-$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
}

bench_build_benchtool() {
    "$cc" -O2 -static -o "$work/benchtool" contrib/bench/benchtool.c \
        || die "cannot build a static contrib/bench/benchtool.c with $cc (libc6-dev provides libc.a)"
}

# FILE...: copied into the work dir, i.e. /work in the guest.
bench_copy_to_guest() {
    cp "$@" "$work/"
}

# CONF: unless REFERENCE_ONLY=1, Vigil must accept it on the host (else the comparison means
# nothing). Sets vigil_guest: the path of vigil in the guest, empty for none.
bench_check_vigil_conf() {
    vigil_guest=
    [ "$REFERENCE_ONLY" != 1 ] || return 0
    "$bindir/vigil" -t -f "$1" || die "vigil -t rejects the generated configuration"
    vigil_guest=$bindir/vigil
}

# VAR...: writes $work/bench.env, which the guest script sources: VAR=value for each, then
# VIGIL='vigil_guest'.
bench_write_env() {
    local v
    {
        for v in "$@"; do
            echo "$v=${!v}"
        done
        echo "VIGIL='$vigil_guest'"
    } >"$work/bench.env"
}

bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# GUEST_SCRIPT: runs it in the kernel lab (contrib/kernel-lab/run.sh) with EXTRA_BINS=extra_bins
# and EXTRA_DIR=work, its console shown and kept in $work/console.txt. Sets status (run.sh's) and
# the host's load average before and after.
bench_run_guest() {
    load_before=$(bench_loadavg)
    set +e
    EXTRA_BINS="$extra_bins" EXTRA_DIR="$work" KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-600} \
        contrib/kernel-lab/run.sh "$1" | tee "$work/console.txt"
    status=${PIPESTATUS[0]}
    set -e
    load_after=$(bench_loadavg)
}

# Sets json: the guest's last `BENCH-JSON {...}` line, plus "host": the host's CPUs and load
# average (the guest's clock follows the host's: a busy host slows the guest down).
bench_result_json() {
    local line
    line=$(sed -n 's/^BENCH-JSON //p' "$work/console.txt" | tail -n 1)
    [ -n "$line" ] || die "no BENCH-JSON line from the guest (kernel lab status $status)"
    json=$(python3 - "$line" "$load_before" "$load_after" <<'PY'
import json, os, sys
data = json.loads(sys.argv[1])
data["host"] = {"cpus": os.cpu_count(), "loadavg_before": sys.argv[2], "loadavg_after": sys.argv[3]}
print(json.dumps(data))
PY
    )
}

# Exits 1 if the guest run failed.
bench_exit_status() {
    [ "$status" = 0 ] || { echo "$bench_name: the guest run failed (see above)" >&2; exit 1; }
}
