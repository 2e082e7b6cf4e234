#!/usr/bin/env bash
# Runs Vigil's IPVS scenarios (ipvs/scenarios.sh) in one boot of the kernel lab: every kind of
# service, TCP_CHECK against real listeners, inhibit, alpha, quorum and sorry server, restart,
# -I, SIGTERM, lvs_flush, all read back with ipvsadm. Exits 0 iff every case passed.
#
#   contrib/kernel-lab/ipvs-suite.sh            # uses the debug build (swift build --show-bin-path)
#   VIGIL_BIN_DIR=.build/release contrib/kernel-lab/ipvs-suite.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${VIGIL_BIN_DIR:-$(cd "$ROOT" && swift build --show-bin-path)}
BIN=$(cd "$BIN" && pwd)
for b in vigil vigild; do
    [ -x "$BIN/$b" ] || { echo "ipvs-suite: $BIN/$b is not built (swift build first)" >&2; exit 2; }
done
DIR=$(mktemp -d "${TMPDIR:-/tmp}/vigil-ipvs-suite.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
cp "$HERE"/ipvs/*.conf "$HERE"/ipvs/mark "$DIR/"
echo "VIGIL=$BIN/vigil" >"$DIR/env"
EXTRA_BINS="$BIN/vigil $BIN/vigild" EXTRA_DIR="$DIR" KERNEL_LAB_TIMEOUT=${KERNEL_LAB_TIMEOUT:-300} \
    "$HERE/run.sh" "$HERE/ipvs/scenarios.sh"
