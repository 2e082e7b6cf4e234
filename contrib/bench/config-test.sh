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

hyperfine --warmup 2 --runs "${RUNS:-15}" --export-json "$out/config-test.json" \
    -n keepalived "ip netns exec $ns keepalived -t -f $conf" \
    -n vigil "ip netns exec $ns $vigil -t -f $conf" >&2

python3 - "$out/config-test.json" "$(wc -l < "$conf")" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
k, v = r["keepalived"], r["vigil"]
print(f"| `-t` on {sys.argv[2]} lines (500 VS x 8 RS + 50 VRRP) | keepalived {k['mean']*1000:.1f} ms ± {k['stddev']*1000:.1f} "
      f"| vigil {v['mean']*1000:.1f} ms ± {v['stddev']*1000:.1f} | ratio vigil/keepalived {v['mean']/k['mean']:.2f} |")
PY
