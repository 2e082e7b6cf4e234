#!/usr/bin/env bash
# Benchmark: `vigil -t` against `keepalived -t` on the same generated file (500 virtual servers
# x 8 real servers + 50 VRRP instances), in the same run, inside a network namespace of our own
# that has eth0. Writes bench-out/config-test.json and prints a Markdown row for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
vigil=${VIGIL:-$root/.build/release/vigil}
out=$root/bench-out
mkdir -p "$out"
conf=$out/bench-500x8.conf
python3 contrib/bench/gen_config.py "$conf" 500 8 50
ns=vgb-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link add eth0 type veth peer name peer0

# Both must accept the file, or the comparison means nothing.
ip netns exec "$ns" keepalived -t -f "$conf"
ip netns exec "$ns" "$vigil" -t -f "$conf"

# Interleave the two commands (keepalived, vigil, keepalived, …) so that machine noise hits both
# alike, and compare medians: on a shared 2-core machine separate back-to-back batches drifted
# by up to 2x between runs.
# The timer itself runs inside the namespace, so each measured run is just the program (no
# `ip netns exec` wrapper per run).
ip netns exec "$ns" python3 - "$conf" "$vigil" "${RUNS:-40}" "$out/config-test.json" <<'PY'
import json, statistics, subprocess, sys, time
conf, vigil, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
commands = {"keepalived": ["keepalived", "-t", "-f", conf],
            "vigil": [vigil, "-t", "-f", conf]}
times = {name: [] for name in commands}
for i in range(runs + 3):
    for name, cmd in commands.items():
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i >= 3:  # warm-up rounds
            times[name].append(time.perf_counter() - start)
med = {n: statistics.median(t) for n, t in times.items()}
json.dump({"runs": runs, "seconds": times, "median": med}, open(out, "w"), indent=1)
lines = sum(1 for _ in open(conf))
print(f"| `-t` on {lines} lines (500 VS x 8 RS + 50 VRRP), median of {runs} interleaved runs "
      f"| keepalived {med['keepalived']*1000:.1f} ms | vigil {med['vigil']*1000:.1f} ms "
      f"| vigil/keepalived {med['vigil']/med['keepalived']:.2f} |")
PY
