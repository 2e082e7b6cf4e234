#!/usr/bin/env bash
# Vigil's kernel lab, step 2: boot Debian's kernel in QEMU and run one guest script in it.
#
#   run.sh SCRIPT
#
# SCRIPT runs as /test.sh under busybox sh (PID 1 is guest-init.sh) with IPVS loaded and lo up,
# in /work (EXTRA_DIR's contents, if given). Its output is printed here, minus kernel messages;
# run.sh exits 0 iff SCRIPT exited 0. EXTRA_BINS, EXTRA_DIR, KERNEL_LAB_CACHE, KERNEL_PKG: see
# build.sh, which this calls first (seconds once cached).
#
# Environment:
#   KERNEL_LAB_TIMEOUT  seconds before a hung guest is killed and the run fails (default 180)
#   KERNEL_LAB_MEM      guest memory in MB (default 512)
#   KERNEL_LAB_VERBOSE  1: show the kernel's console messages too
#   KERNEL_LAB_LOG      also save the raw console output to this file
#
# The guest has no network interface at all (-nic none): nothing on the host is touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${KERNEL_LAB_TIMEOUT:-180}
MEM=${KERNEL_LAB_MEM:-512}

die() { echo "kernel-lab: error: $*" >&2; exit 2; }
[ $# -eq 1 ] || die "usage: $0 SCRIPT"
[ -f "$1" ] || die "no script $1"
SCRIPT=$1

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kernel-lab.XXXXXX")
qemu=
# On any exit (Ctrl-C included) stop our own QEMU, by pid, and remove the temp dir.
cleanup() { [ -z "$qemu" ] || kill "$qemu" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s.%N)
eval "$("$HERE/build.sh" "$TMP/overlay")"
install -m 755 "$SCRIPT" "$TMP/overlay/test.sh"

# The guest's initramfs: the cached base archive followed by this run's overlay archive.
{
    cat "$KERNEL_LAB_INITRD"
    (cd "$TMP/overlay" && find . -print0 | LC_ALL=C sort -z \
        | cpio --null -o -H newc -R 0:0 --quiet | gzip -1)
} >"$TMP/initrd.gz"
rm -rf "$TMP/overlay"

t1=$(date +%s.%N)
# TCG: /dev/kvm exists on these machines but a KVM guest hangs at "Booting from ROM".
# -nodefaults: no VGA, no NIC, no default serial; the one serial port is stdio.
# isa-debug-exit: a byte B written to port 0xf4 ends QEMU with status (B << 1) | 1.
# -no-reboot + panic=-1: a kernel panic ends QEMU (status 0, i.e. no verdict) instead of looping.
# stdin is /dev/null so QEMU never puts the caller's terminal into raw mode.
# The console file exists before QEMU starts: the redirection below is made by the background
# child, and a tail started before it ran found no file and printed nothing (CI, 12-03: the
# ECMP lab passed in the guest but its RESULT lines never reached the test).
: >"$TMP/console.raw"
set +e
timeout --kill-after=10 "$TIMEOUT" \
    qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m "$MEM" \
    -nodefaults -display none -monitor none -nic none -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$KERNEL_LAB_VMLINUZ" -initrd "$TMP/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 oops=panic" -no-reboot \
    </dev/null >>"$TMP/console.raw" 2>"$TMP/qemu.err" &
qemu=$!
# Print the console while the guest runs (tail follows the file until QEMU is gone).
# Kernel messages carry a "[    1.234567] " timestamp; everything else is the guest's output.
# In the background too, so that a signal interrupts `wait` at once and cleanup stops QEMU.
tail -n +1 -s 0.2 -f --pid="$qemu" "$TMP/console.raw" | tr -d '\r' \
    | if [ "${KERNEL_LAB_VERBOSE:-0}" = 1 ]; then cat; else grep -Ev --line-buffered '^\[ *[0-9]+\.[0-9]+\] '; fi &
printer=$!
wait "$qemu"
status=$?
qemu=
wait "$printer"
set -e
t2=$(date +%s.%N)

[ -z "${KERNEL_LAB_LOG:-}" ] || cp "$TMP/console.raw" "$KERNEL_LAB_LOG"
[ ! -s "$TMP/qemu.err" ] || sed 's/^/qemu: /' "$TMP/qemu.err" >&2

# The verdict: QEMU's status (from isa-debug-exit) and the line guest-init.sh printed must agree.
line=$(tr -d '\r' <"$TMP/console.raw" | sed -n 's/^kernel-lab: \/test.sh exited with status \([0-9]*\)$/\1/p' | tail -n 1)
timing=$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "prepare %.1f s, boot+run %.1f s", b - a, c - b }')
if [ "$status" -eq 1 ] && [ "$line" = 0 ]; then
    echo "kernel-lab: PASS ($timing)"
    exit 0
fi
case $status in
    124 | 137) why="guest timed out after $TIMEOUT s" ;;
    0) why="no verdict (kernel panic or power-off before /test.sh finished)" ;;
    1) why="verdict mismatch (console says status '${line}')" ;;
    *) if [ $((status & 1)) -eq 1 ]; then why="/test.sh exited with status $((status >> 1))"
       else why="qemu failed with status $status"; fi ;;
esac
if [ "${KERNEL_LAB_VERBOSE:-0}" != 1 ]; then
    # The kernel lines hidden above are warnings and errors only (quiet): show them on failure.
    kmsg=$(tr -d '\r' <"$TMP/console.raw" | grep -E '^\[ *[0-9]+\.[0-9]+\] ' || true)
    [ -z "$kmsg" ] || printf 'kernel-lab: kernel messages:\n%s\n' "$kmsg"
fi
echo "kernel-lab: FAIL: $why ($timing)"
exit 1
