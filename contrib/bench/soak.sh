#!/usr/bin/env bash
# Benchmark (not a test): false failovers under load, Vigil against keepalived 2.2.7 in the same
# run. Two directors in network namespaces of this script's own, joined by a veth pair: VRRPv3,
# advert_int 0.05 s (the master-down interval is then about 0.16 s), priorities 150 and 100,
# while every core of the machine runs a busy loop. For SOAK seconds after the pair settles,
# counts the backup's "Entering MASTER STATE" lines: each is a false failover.
#
# Writes bench-out/soak.json and prints Markdown rows. Needs root, keepalived and `make release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SOAK=${SOAK:-60}
VIGIL_BIN=${VIGIL_BIN:-$ROOT/.build/release/vigil}
[ -x "$VIGIL_BIN" ] || { echo "soak.sh: $VIGIL_BIN is not built (make release)" >&2; exit 2; }
command -v keepalived >/dev/null || { echo "soak.sh: keepalived is not installed" >&2; exit 2; }
A=vbench-soak-a-$$ B=vbench-soak-b-$$
WORK=$(mktemp -d /tmp/vigil-soak-bench.XXXXXX)
mkdir -p bench-out
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for ns in $A $B; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$A"; ip netns add "$B"
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
for ns in $A $B; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 10.41.0.1/24 dev eth0
ip -n "$B" addr add 10.41.0.2/24 dev eth0

conf() { # conf PRIORITY FILE
    cat >"$2" <<EOF
global_defs {
    router_id soak
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    version 3
    priority $1
    advert_int 0.05
    virtual_ipaddress {
        10.41.0.100/24
    }
}
EOF
}
conf 150 "$WORK/a.conf"; conf 100 "$WORK/b.conf"

start() { # start DAEMON NS NAME: the daemon's pid on stdout
    local run=$WORK/run-$3; rm -rf "$run"; mkdir -p "$run"
    case $1 in
    keepalived) TMPDIR=$run ip netns exec "$2" keepalived -n -l -P -f "$WORK/$3.conf" -p "$run/k.pid" -r "$run/v.pid" >"$WORK/$3.log" 2>&1 & ;;
    vigil) TMPDIR=$run ip netns exec "$2" "$VIGIL_BIN" -n -l -f "$WORK/$3.conf" -p "$run/vigil.pid" --control "$run/vigil.sock" >"$WORK/$3.log" 2>&1 & ;;
    esac
    echo $!
}
masters() { grep -c "Entering MASTER STATE" "$WORK/$1.log" || true; }

rows=()
for daemon in keepalived vigil; do
    pa=$(start $daemon "$A" a); PIDS+=("$pa")
    sleep 1
    pb=$(start $daemon "$B" b); PIDS+=("$pb")
    sleep 3
    a0=$(masters a); b0=$(masters b)
    busy=()
    for _ in $(seq 1 "$(nproc)"); do sh -c 'while :; do :; done' & busy+=($!); PIDS+=($!); done
    sleep "$SOAK"
    for pid in "${busy[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    a1=$(masters a); b1=$(masters b)
    held=$(ip -n "$A" -4 addr show dev eth0 | grep -c '10.41.0.100/' || true)
    kill -TERM "$pb" "$pa" 2>/dev/null || true
    wait "$pb" "$pa" 2>/dev/null || true
    echo "$daemon: backup became master $((b1 - b0)) times in $SOAK s under load (master's own: $((a1 - a0)); master holds the VIP at the end: $held)" >&2
    rows+=("$daemon $((b1 - b0)) $((a1 - a0)) $held")
done

printf '%s\n' "${rows[@]}" >"$WORK/rows"
python3 - "$WORK/rows" bench-out/soak.json "$SOAK" <<'PY'
import json, sys
out = {"soak_s": int(sys.argv[3]), "advert_int_s": 0.05, "version": 3}
for line in open(sys.argv[1]):
    daemon, false_failovers, master_again, held = line.split()
    out[daemon] = {"false_failovers": int(false_failovers), "master_transitions": int(master_again), "master_holds_vip": held == "1"}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(f"| false failovers, VRRPv3 advert_int 0.05 s, every core busy, {out['soak_s']} s | keepalived {out['keepalived']['false_failovers']} | vigil {out['vigil']['false_failovers']} |")
PY
