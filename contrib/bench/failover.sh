#!/usr/bin/env bash
# Benchmark (not a test): failover on the wire, Vigil against keepalived 2.2.7 in the same run.
# For each daemon, ROUNDS times: start lvs01 and lvs02 in the lab, let lvs01 become master,
# then stop it (SIGKILL, then in a fresh round SIGTERM) and measure from the bridge capture:
#   - gap between the old master's last advert and the new master's first, minus the RFC bound
#     (SIGKILL: 3 x 1 s + (256-95)/256 s) or the skew time (SIGTERM: (256-95)/256 s);
#   - delay from the new master's first advert to its first gratuitous ARP;
# and the idle RSS of the director processes 3 s after start (all processes of the daemon).
# Writes bench-out/failover.json and prints Markdown rows for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
LAB=contrib/lab/lab.sh
STATE=${VIGIL_LAB_DIR:-/run/vigil-lab}
ROUNDS=${ROUNDS:-5}
export VIGIL_BIN=${VIGIL_BIN:-$PWD/.build/release/vigil}
mkdir -p bench-out
trap '$LAB down >/dev/null 2>&1 || true' EXIT INT TERM

holder() { for n in lvs01 lvs02; do if ip -n vlab-$n -4 addr show dev eth0 | grep -q '172.16.10.40/'; then echo $n; fi; done; }
# Waits until $1 holds the VIP (after a SIGKILL the dead master keeps a stale copy).
wait_holder() { for _ in $(seq 1 100); do holder | grep -qx "$1" && return 0; sleep 0.1; done; return 1; }
. contrib/bench/host-common.sh

results=()
for daemon in keepalived vigil; do
    for mode in kill stop; do
        for round in $(seq 1 "$ROUNDS"); do
            $LAB down >/dev/null 2>&1 || true
            $LAB up >/dev/null
            $LAB start lvs01 $daemon >/dev/null
            wait_holder lvs01 || { echo "no master with $daemon" >&2; exit 1; }
            $LAB start lvs02 $daemon >/dev/null
            sleep 3
            pid=$(awk '{print $1}' "$STATE/pids/daemon-lvs02.pid")
            rss=$(rss_of_tree "$pid")
            $LAB capture start >/dev/null
            sleep 1.5
            $LAB $mode lvs01 >/dev/null
            wait_holder lvs02 || { echo "no takeover with $daemon ($mode)" >&2; exit 1; }
            sleep 1
            $LAB capture stop >/dev/null
            line=$(python3 - "$STATE/capture.txt" "$mode" <<'PY'
import sys
packets, pending = [], None
for line in open(sys.argv[1]):
    parts = line.split()
    if parts and parts[0].replace('.', '', 1).isdigit():
        pending = float(parts[0])
        if "Request who-has 172.16.10.40" in line and "tell 172.16.10.40" in line:
            packets.append((pending, "garp", None))
        continue
    if "VRRPv" in line and pending is not None:
        s = line.split()
        prio = int(line.split("prio ")[1].split(",")[0])
        packets.append((pending, s[0], prio))
old = [p for p in packets if p[1] == "172.16.10.41"]
new = [p for p in packets if p[1] == "172.16.10.42"]
last_old = old[-1][0]
first_new = [p for p in new if p[0] > last_old][0][0]
garp = [p for p in packets if p[1] == "garp" and p[0] >= first_new][0][0]
bound = (256 - 95) / 256 + (3 if sys.argv[2] == "kill" else 0)
print(f"{(first_new - last_old - bound) * 1000:.2f} {(garp - first_new) * 1000:.2f}")
PY
)
            echo "$daemon $mode round $round: over-bound ms, first-GARP ms = $line, lvs02 RSS ${rss} KiB" >&2
            results+=("$daemon $mode $line $rss")
        done
    done
done
$LAB down >/dev/null 2>&1 || true

printf '%s\n' "${results[@]}" > bench-out/failover.rows
python3 - bench-out/failover.rows <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
out = {}
for d, mode, over, garp, rss in rows:
    e = out.setdefault(d, {}).setdefault(mode, {"over_ms": [], "garp_ms": [], "rss_kib": []})
    e["over_ms"].append(float(over)); e["garp_ms"].append(float(garp)); e["rss_kib"].append(int(rss))
json.dump(out, open("bench-out/failover.json", "w"), indent=1)
med = statistics.median
for mode, label in (("kill", "SIGKILL of the master: gap minus RFC bound"), ("stop", "SIGTERM of the master: gap minus skew time")):
    k, v = out["keepalived"][mode]["over_ms"], out["vigil"][mode]["over_ms"]
    print(f"| {label} (median of {len(k)}; range) | keepalived {med(k):.2f} ms ({min(k):.2f}-{max(k):.2f}) | vigil {med(v):.2f} ms ({min(v):.2f}-{max(v):.2f}) |")
k = out["keepalived"]["kill"]["garp_ms"] + out["keepalived"]["stop"]["garp_ms"]
v = out["vigil"]["kill"]["garp_ms"] + out["vigil"]["stop"]["garp_ms"]
print(f"| new master: first advert to first GARP (median) | keepalived {med(k):.2f} ms | vigil {med(v):.2f} ms |")
k = out["keepalived"]["kill"]["rss_kib"]; v = out["vigil"]["kill"]["rss_kib"]
print(f"| idle RSS of a director (lvs02.conf, all its processes, median) | keepalived {med(k)/1024:.1f} MB | vigil {med(v)/1024:.1f} MB |")
PY
