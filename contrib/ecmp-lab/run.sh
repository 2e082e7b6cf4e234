#!/usr/bin/env bash
# Runs the ECMP lab (guest.sh) in one boot of the kernel lab: three Vigil directors behind an
# FRR router, connections through the loss of one, with and without connection sync. Prints
# the guest's narrative and its RESULT lines; exits 0 iff the guest script did.
#
#   contrib/ecmp-lab/run.sh            # the debug build (swift build --show-bin-path)
#   VIGIL_BIN_DIR=.build/release contrib/ecmp-lab/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${VIGIL_BIN_DIR:-$(cd "$ROOT" && swift build --show-bin-path)}
BIN=$(cd "$BIN" && pwd)
for b in "$BIN/vigil" "$BIN/vigild" /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/bin/vtysh /usr/bin/ip /usr/bin/tcpdump; do
    [ -x "$b" ] || { echo "ecmp-lab: $b is missing (swift build; make deps installs frr, iproute2, tcpdump)" >&2; exit 2; }
done
PAM_PERMIT=$(dpkg -L libpam-modules 2>/dev/null | grep '/pam_permit.so$' | head -n 1)
[ -n "$PAM_PERMIT" ] || { echo "ecmp-lab: pam_permit.so not found (libpam-modules)" >&2; exit 2; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/vigil-ecmp-lab.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
echo "VIGIL=$BIN/vigil" >"$DIR/env"
echo "CONNECTIONS=${CONNECTIONS:-24}" >>"$DIR/env"
EXTRA_BINS="$BIN/vigil $BIN/vigild /usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/bin/vtysh /usr/bin/ip /usr/bin/tcpdump $PAM_PERMIT" \
    EXTRA_DIR="$DIR" KERNEL_LAB_MEM=${KERNEL_LAB_MEM:-1024} KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-600} \
    "$ROOT/contrib/kernel-lab/run.sh" "$HERE/guest.sh"
