#!/usr/bin/env bash
# Benchmark (not a test): what an idle director costs, Vigil against keepalived 2.2.7 in the same
# run: RSS (every process of the daemon) and CPU over WINDOW seconds, with one VRRP instance and
# with 255 (VRIDs 1...255 on one interface, every one MASTER, so 255 adverts a second leave).
# Each daemon runs alone in a network namespace of this script's own on a veth eth0 (its peer
# in the same namespace); keepalived runs -P (VRRP only: there is no virtual server). ROUNDS rounds,
# the daemons alternating; medians reported.
#
# Writes bench-out/idle.json and prints Markdown rows. Needs root, keepalived and `make release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-20}
VIGIL_BIN=${VIGIL_BIN:-$ROOT/.build/release/vigil}
[ -x "$VIGIL_BIN" ] || { echo "idle.sh: $VIGIL_BIN is not built (make release)" >&2; exit 2; }
command -v keepalived >/dev/null || { echo "idle.sh: keepalived is not installed" >&2; exit 2; }
NS=vbench-idle-$$
WORK=$(mktemp -d /tmp/vigil-idle-bench.XXXXXX)
mkdir -p bench-out
DPID=
cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
. contrib/bench/host-common.sh

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add eth0 type veth peer name peer0
ip -n "$NS" link set peer0 up
ip -n "$NS" link set eth0 up
ip -n "$NS" addr add 10.40.0.1/16 dev eth0

gen() { # gen COUNT FILE
    python3 - "$1" "$2" <<'PY'
import sys
count, path = int(sys.argv[1]), sys.argv[2]
lines = ["global_defs {", "    router_id bench-idle", "}"]
for v in range(1, count + 1):
    lines += [f"vrrp_instance VI_{v} {{", "    state MASTER", "    interface eth0", f"    virtual_router_id {v}",
              "    priority 150", "    advert_int 1", "    virtual_ipaddress {", f"        10.40.{v // 250 + 1}.{v % 250 + 1}/16", "    }", "}"]
open(path, "w").write("\n".join(lines) + "\n")
PY
}
cpu_ns() { # nanoseconds on CPU of a pid, its threads and its children (schedstat: finer than ticks)
    local total=0 p t
    for p in $1 $(pgrep -P "$1" || true); do
        for t in /proc/$p/task/*/schedstat; do
            total=$((total + $(awk '{ print $1 }' "$t" 2>/dev/null || echo 0)))
        done
    done
    echo $total
}

rows=()
for count in 1 255; do
    gen "$count" "$WORK/idle-$count.conf"
    for round in $(seq 1 "$ROUNDS"); do
        for daemon in keepalived vigil; do
            run=$WORK/run-$daemon; rm -rf "$run"; mkdir -p "$run"
            case $daemon in
            keepalived) cmd=(keepalived -n -l -P -f "$WORK/idle-$count.conf" -p "$run/k.pid" -r "$run/v.pid") ;;
            vigil) cmd=("$VIGIL_BIN" -n -l -f "$WORK/idle-$count.conf" -p "$run/vigil.pid" --control "$run/vigil.sock") ;;
            esac
            TMPDIR=$run ip netns exec "$NS" "${cmd[@]}" >"$WORK/$daemon.log" 2>&1 &
            DPID=$!
            # Every instance master (3 adverts' time and a little), then idle. The RSS is read at
            # the window's end: the steady state, after whatever start-up left behind settled.
            sleep 5
            t0=$(cpu_ns "$DPID"); sleep "$WINDOW"; t1=$(cpu_ns "$DPID")
            rss=$(rss_of_tree "$DPID")
            cpu=$(awk -v t=$((t1 - t0)) -v w="$WINDOW" 'BEGIN { printf "%.4f", 100 * t / 1e9 / w }')
            masters=$(grep -c "Entering MASTER STATE" "$WORK/$daemon.log" || true)
            kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=
            echo "$count instances, round $round, $daemon: RSS ${rss} KiB, CPU ${cpu} % over ${WINDOW} s, $masters masters" >&2
            rows+=("$count $daemon $rss $cpu $masters")
        done
    done
done

printf '%s\n' "${rows[@]}" >"$WORK/rows"
python3 - "$WORK/rows" bench-out/idle.json "$WINDOW" <<'PY'
import json, statistics, sys
out = {"window_s": int(sys.argv[3])}
for line in open(sys.argv[1]):
    count, daemon, rss, cpu, masters = line.split()
    e = out.setdefault(f"instances_{count}", {}).setdefault(daemon, {"rss_kib": [], "cpu_percent": [], "masters": []})
    e["rss_kib"].append(int(rss)); e["cpu_percent"].append(float(cpu)); e["masters"].append(int(masters))
for key, by in out.items():
    if not key.startswith("instances_"): continue
    for d in by.values():
        d["rss_mb_median"] = round(statistics.median(d["rss_kib"]) / 1024, 2)
        d["cpu_percent_median"] = round(statistics.median(d["cpu_percent"]), 4)
json.dump(out, open(sys.argv[2], "w"), indent=1)
for key in ("instances_1", "instances_255"):
    k, v = out[key]["keepalived"], out[key]["vigil"]
    n = key.split("_")[1]
    print(f"| idle, {n} instance(s) MASTER: RSS | keepalived {k['rss_mb_median']} MB | vigil {v['rss_mb_median']} MB | {v['rss_mb_median'] / k['rss_mb_median']:.2f} |")
    ratio = f"{v['cpu_percent_median'] / k['cpu_percent_median']:.2f}" if k['cpu_percent_median'] else "—"
    print(f"| idle, {n} instance(s) MASTER: CPU | keepalived {k['cpu_percent_median']} % | vigil {v['cpu_percent_median']} % | {ratio} |")
PY
