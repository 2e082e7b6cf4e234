#!/usr/bin/env bash
# Vigil's kernel lab, step 1: everything a QEMU guest with IPVS needs, cached.
#
#   build.sh [OVERLAY_DIR]
#
# Idempotent. It
#   1. installs the host tools it needs with apt-get (only those missing);
#   2. downloads Debian's kernel package once (`apt-get download`), extracts vmlinuz and the
#      modules the lab uses (IPVS, its dependencies, every ip_vs scheduler, veth/bridge/dummy/
#      macvlan) into the cache, and runs depmod on that trimmed module tree;
#   3. builds the base initramfs (busybox, kmod, ipvsadm and their libraries, the modules,
#      guest-init.sh as /init) and packs it as base.cpio.gz, rebuilt only when an input changes;
#   4. with OVERLAY_DIR: fills that directory (which must be empty or absent) with EXTRA_BINS
#      (and every library ldd names for them, at the same absolute paths) and EXTRA_DIR (as
#      /work). run.sh packs the overlay as a second cpio archive appended to the base one: the
#      kernel unpacks concatenated archives in order.
#
# On stdout it prints shell assignments for run.sh: KERNEL_LAB_VMLINUZ (the kernel to boot),
# KERNEL_LAB_INITRD, KERNEL_LAB_KVER. Progress goes to stderr.
#
# Environment:
#   KERNEL_LAB_CACHE  cache directory (default /var/cache/vigil-kernel-lab)
#   KERNEL_PKG        kernel package, e.g. linux-image-6.1.0-56-amd64 (default: the one already
#                     cached, else the one Debian's linux-image-amd64 currently depends on)
#   EXTRA_BINS        space-separated host paths of binaries to copy into the guest
#   EXTRA_DIR         a host directory copied to /work in the guest
#   KERNEL_LAB_PVH    0: boot the compressed bzImage instead of the unpacked kernel (slower)
#
# It writes nothing outside the cache and OVERLAY_DIR (besides apt-get's own installs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KERNEL_LAB_CACHE:-/var/cache/vigil-kernel-lab}
OVERLAY=${1:-}
HOST_PKGS=(qemu-system-x86 busybox-static cpio kmod ipvsadm xz-utils)
# Every IPVS scheduler Linux has had; those whose module the kernel package lacks are skipped.
SCHEDULERS=(rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos)
# Other modules a guest test may want (own namespaces joined by a bridge, dummy interfaces).
# Loaded on demand by the kernel (request_module) or by the test with modprobe.
# nlmon: the reload benchmark counts every netlink request of the namespace through it.
OTHER_MODULES=(crc32c_generic ip_vs veth bridge dummy macvlan nlmon)

say() { echo "kernel-lab: $*" >&2; }
die() { echo "kernel-lab: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get, mknod)"
mkdir -p "$CACHE"
# One builder at a time: two CI jobs sharing the cache must not write it concurrently.
exec 9>"$CACHE/.lock"
flock 9

TMP=$(mktemp -d "$CACHE/tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# --- 1. host packages ---------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install() {
    # Try without refreshing the package lists first (fast, works offline); refresh on failure.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "$@" >&2; }
}
missing=()
for p in "${HOST_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# --- 2. kernel ----------------------------------------------------------------------------------
pkg=${KERNEL_PKG:-}
[ -n "$pkg" ] || [ ! -s "$CACHE/kernel-pkg" ] || pkg=$(cat "$CACHE/kernel-pkg")
if [ -z "$pkg" ]; then
    current() { apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'; }
    pkg=$(current)
    [ -n "$pkg" ] || { apt-get update -q >&2; pkg=$(current); }
    [ -n "$pkg" ] || die "cannot tell which linux-image package to use (set KERNEL_PKG)"
fi
kver=${pkg#linux-image-}
kdir=$CACHE/kernels/$kver
# The extraction is redone when the list of modules it keeps changes.
modules_stamp="${OTHER_MODULES[*]} ${SCHEDULERS[*]}"

if [ "$(cat "$kdir/.done" 2>/dev/null)" != "$modules_stamp" ]; then
    say "fetching $pkg"
    rm -rf "$kdir"
    # The sandbox user _apt could not write into our private temp dir; download as root.
    (cd "$TMP" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) \
        || { apt-get update -q >&2 \
            && (cd "$TMP" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); }
    say "extracting $pkg"
    dpkg-deb -x "$TMP"/"$pkg"_*.deb "$TMP/x"
    full=$TMP/x/lib/modules/$kver
    [ -d "$full" ] || die "no lib/modules/$kver in $pkg"
    # The package's modules.dep is generated at install time, so make one for the extraction.
    depmod -b "$TMP/x" "$kver"

    wanted=("${OTHER_MODULES[@]}")
    for s in "${SCHEDULERS[@]}"; do wanted+=("ip_vs_$s"); done
    mkdir -p "$kdir/root/lib/modules/$kver"
    for m in "${wanted[@]}"; do
        # --show-depends prints "insmod PATH" for the module and everything it needs (softdeps
        # included), or "builtin NAME"; a module absent from this kernel is just skipped.
        deps=$(modprobe -d "$TMP/x" -S "$kver" --show-depends "$m" 2>/dev/null) \
            || { say "no module $m in $kver, skipped"; continue; }
        while read -r kind path _; do
            [ "$kind" = insmod ] || continue
            rel=${path#"$full"/}
            mkdir -p "$kdir/root/lib/modules/$kver/$(dirname "$rel")"
            cp "$path" "$kdir/root/lib/modules/$kver/$rel"
        done <<<"$deps"
    done
    # libcrc32c (needed by nf_conntrack) only names "crc32c" as a soft dependency; without the
    # generic implementation loaded it fails with "Unknown symbol". guest-init.sh loads it.
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ ! -e "$full/$f" ] || cp "$full/$f" "$kdir/root/lib/modules/$kver/"
    done
    depmod -b "$kdir/root" "$kver"
    cp "$TMP/x/boot/vmlinuz-$kver" "$kdir/vmlinuz"
    dpkg-deb -f "$TMP"/"$pkg"_*.deb Version >"$kdir/version"
    rm -rf "$TMP/x" "$TMP"/*.deb
    echo "$modules_stamp" >"$kdir/.done"
fi
echo "$pkg" >"$CACHE/kernel-pkg"

# Under TCG, the bzImage's decompressor (xz on Debian) takes about 5 s of every boot. QEMU can
# instead boot the uncompressed ELF kernel directly through its PVH entry point, which Debian's
# kernel has (CONFIG_PVH: a "Xen" ELF note of type 0x12), so unpack it once and keep it:
# a boot then takes about 5 s instead of 13. If that fails, run.sh boots the bzImage.
has_pvh_note() { # namesz 4, descsz 4 or 8, type 0x12 (XEN_ELFNOTE_PHYS32_ENTRY), "Xen\0"
    LC_ALL=C grep -qaP '\x04\x00\x00\x00[\x04\x08]\x00\x00\x00\x12\x00\x00\x00Xen\x00' "$1"
}
if [ ! -e "$kdir/vmlinux" ] && [ ! -e "$kdir/no-pvh" ]; then
    say "unpacking the uncompressed kernel for a PVH boot"
    # The payload is the first xz (or gzip) stream in the bzImage that unpacks to an ELF file.
    for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00|\x1f\x8b\x08' "$kdir/vmlinuz" | cut -d: -f1); do
        tail -c +$((off + 1)) "$kdir/vmlinuz" | { xz -dcq --single-stream 2>/dev/null \
            || gzip -dcq 2>/dev/null; } >"$TMP/vmlinux" || true
        [ "$(head -c 4 "$TMP/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] && break
    done
    if [ -s "$TMP/vmlinux" ] && has_pvh_note "$TMP/vmlinux"; then
        mv "$TMP/vmlinux" "$kdir/vmlinux"
    else
        say "no PVH-bootable kernel in $pkg: booting the bzImage (slower)"
        touch "$kdir/no-pvh"
    fi
    rm -f "$TMP/vmlinux"
fi
boot_kernel=$kdir/vmlinuz
[ "${KERNEL_LAB_PVH:-1}" = 0 ] || [ ! -e "$kdir/vmlinux" ] || boot_kernel=$kdir/vmlinux

# --- 3. base initramfs --------------------------------------------------------------------------
# Rebuilt when this script, the guest init, the kernel or a copied package changes.
stamp=$( {
    cat "$HERE/build.sh" "$HERE/guest-init.sh"
    echo "$kver $(cat "$kdir/version")"
    dpkg-query -W busybox-static kmod ipvsadm libc6 libnl-3-200 libnl-genl-3-200 libpopt0 2>/dev/null || true
} | sha256sum | cut -c1-16)
base=$CACHE/base-$kver

# Copies the file at absolute host path $2 to the same path under tree $1, following symlinks.
# Directories are created through the tree's own /lib -> usr/lib style links.
put() { mkdir -p "$1$(dirname "$2")"; cp -L "$2" "$1$2"; }
# Copies a binary and every shared library ldd names for it (static binaries: just the binary).
put_bin() {
    local tree=$1 bin=$2 lib
    put "$tree" "$bin"
    ! ldd "$bin" 2>/dev/null | grep 'not found' >&2 || die "$bin: missing shared libraries"
    # ldd lines: "libx.so => /path (0x..)", "/lib64/ld-linux-x86-64.so.2 (0x..)", "linux-vdso..".
    for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true); do
        put "$tree" "$lib"
    done
}
# Debian 12 is merged-usr: /bin, /sbin, /lib, /lib64 are links into /usr. The guest is built
# the same way, so every binary and library sits at the path it has on the host.
skeleton() {
    mkdir -p "$1"/usr/{bin,sbin,lib,lib64}
    local d
    for d in bin sbin lib lib64; do [ -L "$1/$d" ] || ln -s "usr/$d" "$1/$d"; done
}

if [ "$(cat "$base/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$base/base.cpio.gz" ]; then
    say "building the base initramfs for $kver"
    t=$TMP/tree
    skeleton "$t"
    mkdir -p "$t"/{dev,proc,sys,tmp,run,root,work,etc/kernel-lab}
    # The kernel opens /dev/console for init before anything is mounted: it must exist here.
    mknod -m 600 "$t/dev/console" c 5 1
    mknod -m 666 "$t/dev/null" c 1 3

    # kmod first: its modprobe (.ko.xz, softdeps, aliases) is the one the kernel runs for
    # request_module (scheduler autoloading); busybox provides every other applet.
    put_bin "$t" "$(command -v kmod)"
    for a in modprobe insmod rmmod lsmod modinfo depmod; do
        ln -sf "$(command -v kmod)" "$t/usr/sbin/$a"
    done
    put "$t" /bin/busybox
    for a in $(/bin/busybox --list-full); do
        [ -e "$t/$a" ] || [ -L "$t/$a" ] || ln -s /bin/busybox "$t/$a"
    done
    put_bin "$t" "$(command -v ipvsadm)"

    cp -a "$kdir/root/lib/modules" "$t/usr/lib/"
    for s in "${SCHEDULERS[@]}"; do
        [ -z "$(find "$t/usr/lib/modules" -name "ip_vs_$s.ko*")" ] || echo "$s"
    done >"$t/etc/kernel-lab/schedulers"
    echo "$kver" >"$t/etc/kernel-lab/kernel"

    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$t/etc/passwd"
    printf 'root:x:0:\n' >"$t/etc/group"
    for f in /etc/protocols /etc/services; do [ ! -e "$f" ] || cp "$f" "$t$f"; done
    install -m 755 "$HERE/guest-init.sh" "$t/init"

    rm -rf "$base.new"
    mkdir -p "$base.new"
    (cd "$t" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) \
        | gzip -1 >"$base.new/base.cpio.gz"
    echo "$stamp" >"$base.new/stamp"
    rm -rf "$base"
    mv "$base.new" "$base"
    say "base initramfs: $(du -h "$base/base.cpio.gz" | cut -f1), $(wc -l <"$t/etc/kernel-lab/schedulers") schedulers: $(tr '\n' ' ' <"$t/etc/kernel-lab/schedulers")"
fi

# --- 4. overlay ---------------------------------------------------------------------------------
if [ -n "$OVERLAY" ]; then
    mkdir -p "$OVERLAY"
    [ -z "$(ls -A "$OVERLAY")" ] || die "overlay directory $OVERLAY is not empty"
    skeleton "$OVERLAY"
    for b in ${EXTRA_BINS:-}; do
        [ -f "$b" ] || die "EXTRA_BINS: no file $b"
        case $b in /*) ;; *) b=$PWD/$b ;; esac # same absolute path in the guest
        put_bin "$OVERLAY" "$b"
    done
    if [ -n "${EXTRA_DIR:-}" ]; then
        [ -d "$EXTRA_DIR" ] || die "EXTRA_DIR: no directory $EXTRA_DIR"
        mkdir -p "$OVERLAY/work"
        cp -a "$EXTRA_DIR/." "$OVERLAY/work/"
    fi
fi

printf 'KERNEL_LAB_KVER=%q\nKERNEL_LAB_VMLINUZ=%q\nKERNEL_LAB_INITRD=%q\n' \
    "$kver" "$boot_kernel" "$base/base.cpio.gz"
