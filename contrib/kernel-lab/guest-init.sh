#!/bin/sh
# /init of the kernel-lab guest (busybox sh, PID 1). Installed by build.sh; runs /test.sh (put
# there by run.sh) with its output on the serial console, then hands its exit status to QEMU
# through the isa-debug-exit device and powers off. It must never return: PID 1 exiting panics
# the kernel (run.sh would then report "no verdict").
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
hostname kernel-lab

say() { echo "kernel-lab: $*"; }
verdict() {
    say "/test.sh exited with status $1"
    # isa-debug-exit (iobase 0xf4 = 244) makes QEMU exit with (byte << 1) | 1, in 8 bits: keep
    # the byte below 128 so every failure stays distinguishable from success (1).
    code=$1
    [ "$code" -le 127 ] || code=127
    printf "\\$(printf %03o "$code")" | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
    # Only reached if the device is missing: a plain power-off, which run.sh reports as failure.
    poweroff -f
    sleep 60
}

# The kernel runs this for request_module (e.g. an ip_vs_NAME scheduler asked for by name).
echo /sbin/modprobe >/proc/sys/kernel/modprobe
# libcrc32c (nf_conntrack -> ip_vs) needs a crc32c implementation loaded first or it fails with
# "Unknown symbol"; its softdep alone is not enough on this kernel.
modprobe crc32c_generic && modprobe ip_vs || say "WARNING: could not load ip_vs"
# IPVS rejects a direct-routing destination while no interface is up, so lo comes up first.
ip link set lo up

say "kernel $(uname -r), $(grep -c . /etc/kernel-lab/schedulers) ip_vs schedulers, running /test.sh"
cd /work || cd /
if [ -f /test.sh ]; then
    /bin/sh /test.sh </dev/null
    rc=$?
else
    say "no /test.sh"
    rc=2
fi
verdict "$rc"
