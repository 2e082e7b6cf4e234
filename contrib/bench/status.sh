#!/usr/bin/env bash
# Benchmark (not a test): what state costs, Vigil against keepalived 2.2.7 plus an exporter,
# measured in the same run on this machine.
#
#   1. Idle memory in the lab (lvs02.conf, backup director, 3 s after start, after 5 scrapes):
#      Vigil with its control socket and /metrics on, against keepalived (all its processes)
#      plus contrib/bench/exporter-floor, a minimal keepalived exporter on client_golang (what
#      mehdy/keepalived-exporter does in --ka.json mode, reduced; a floor for the real ones).
#   2. CPU of one scrape with 50 VRRP instances and 100 virtual servers x 10 real servers
#      (1,000 real servers), in a namespace of its own: the daemon's CPU (utime+stime from
#      /proc) over SCRAPES scrapes, minus its CPU over the same time without scrapes. This
#      kernel has no IPVS, so the keepalived_lvs_* series are not in it (scrape-ipvs.sh measures them in the kernel lab);
#      keepalived runs -P (its checker stops the daemon without IPVS) with exporter-floor.
#
# Needs root, Go (Debian's golang-go and golang-github-prometheus-client-golang-dev, installed
# here if missing) and `make release`. Writes bench-out/status.json and prints Markdown rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LAB=contrib/lab/lab.sh
STATE=${VIGIL_LAB_DIR:-/run/vigil-lab}
ROUNDS=${ROUNDS:-3}
SCRAPES=${SCRAPES:-300}
export VIGIL_BIN=${VIGIL_BIN:-$ROOT/.build/release/vigil}
[ -x "$VIGIL_BIN" ] || { echo "status.sh: $VIGIL_BIN is not built (make release)" >&2; exit 2; }
OUT=$ROOT/bench-out
WORK=$(mktemp -d /tmp/vigil-status-bench.XXXXXX)
NS=vbench-scrape-$$
mkdir -p "$OUT"
cleanup() {
    $LAB down >/dev/null 2>&1 || true
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

missing=""
for p in golang-go golang-github-prometheus-client-golang-dev; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
(cd contrib/bench/exporter-floor && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE=$WORK/gocache go build -o "$WORK/exporter-floor" main.go)

. contrib/bench/host-common.sh
lab_pid() { awk '{print $1}' "$STATE/pids/daemon-$1.pid"; }
scrape_in() { # scrape_in NS PORT COUNT
    ip netns exec "$1" python3 -c 'import sys, urllib.request
for _ in range(int(sys.argv[2])): urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read()' "$2" "$3"
}

# --- 1. idle memory ---------------------------------------------------------------------------
rows=()
for round in $(seq 1 "$ROUNDS"); do
    for daemon in keepalived vigil; do
        $LAB down >/dev/null 2>&1 || true
        $LAB up >/dev/null
        $LAB start lvs01 $daemon >/dev/null
        $LAB start lvs02 $daemon >/dev/null
        sleep 3
        pid=$(lab_pid lvs02)
        exporter=""
        if [ $daemon = keepalived ]; then
            setsid ip netns exec vlab-lvs02 "$WORK/exporter-floor" "$pid" 127.0.0.1:9165 "$STATE/run/lvs02" \
                </dev/null >"$WORK/exporter.log" 2>&1 &
            exporter=$!
            sleep 1
        fi
        scrape_in vlab-lvs02 9165 5
        [ $daemon = vigil ] && for _ in 1 2 3 4 5; do $LAB ask lvs02 status --json >/dev/null; done
        kib=$(rss_of_tree "$pid")
        extra=0
        [ -n "$exporter" ] && extra=$(awk '/^VmRSS/{print $2}' /proc/$exporter/status)
        echo "memory round $round: $daemon ${kib} KiB${exporter:+ + exporter ${extra} KiB}" >&2
        rows+=("memory $daemon $kib $extra")
        [ -n "$exporter" ] && kill "$exporter" 2>/dev/null || true
    done
done
$LAB down >/dev/null

# --- 2. CPU of a scrape -------------------------------------------------------------------------
python3 contrib/bench/gen_config.py "$WORK/scrape.conf" 100 10 50
ip netns add "$NS"
ip -n "$NS" link add eth0 type veth peer name peer0
ip -n "$NS" link set lo up
ip -n "$NS" link set eth0 up
ip -n "$NS" link set peer0 up
ip -n "$NS" addr add 10.250.0.1/24 dev eth0
cpu_per_scrape() { # cpu_per_scrape PORT PID...: ms of CPU per scrape of the pids' trees, baseline subtracted
    ip netns exec "$NS" python3 - "$SCRAPES" "$@" <<'PY'
import sys, time, urllib.request
scrapes, port, pids = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def children(pid):
    try: return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError: return []
def cpu():
    total, todo = 0, [int(p) for p in pids]
    while todo:
        p = todo.pop()
        fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        todo += children(p)
    return total / 100.0
url = f"http://127.0.0.1:{port}/metrics"
body = urllib.request.urlopen(url, timeout=10).read()
series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
time.sleep(1)
c0, t0 = cpu(), time.time(); time.sleep(15); base = (cpu() - c0) / (time.time() - t0)
c0, t0 = cpu(), time.time()
for _ in range(scrapes): urllib.request.urlopen(url, timeout=10).read()
elapsed = time.time() - t0
print(f"{(cpu() - c0 - base * elapsed) / scrapes * 1000:.3f} {series} {len(body)} {base * 1000:.2f}")
PY
}
# Vigil: one process, control socket and metrics on.
ip netns exec "$NS" "$VIGIL_BIN" -n -l -f "$WORK/scrape.conf" -p "$WORK/vigil.pid" --control "$WORK/vigil.sock" \
    --metrics 127.0.0.1:9165 >"$WORK/vigil.log" 2>&1 &
sleep 6
vpid=$(cat "$WORK/vigil.pid")
read -r v_ms v_series v_bytes v_base < <(cpu_per_scrape 9165 "$vpid")
echo "scrape: vigil $v_ms ms, $v_series series, $v_bytes bytes (idle $v_base ms/s)" >&2
kill "$vpid"; wait "$vpid" 2>/dev/null || true
# keepalived -P (VRRP only) and exporter-floor, which signals it and reads its JSON dump.
mkdir -p "$WORK/ka"
TMPDIR=$WORK/ka ip netns exec "$NS" keepalived -n -l -P -f "$WORK/scrape.conf" -p "$WORK/ka/keepalived.pid" \
    -r "$WORK/ka/vrrp.pid" >"$WORK/keepalived.log" 2>&1 &
kpid=$!
sleep 6
ip netns exec "$NS" "$WORK/exporter-floor" "$kpid" 127.0.0.1:9166 "$WORK/ka" >"$WORK/exporter.log" 2>&1 &
epid=$!
sleep 1
# Each exporter-floor scrape waits 100 ms for the dump, as keepalived-exporter does.
read -r k_ms k_series k_bytes k_base < <(SCRAPES=$((SCRAPES / 5)) cpu_per_scrape 9166 "$kpid" "$epid")
echo "scrape: keepalived + exporter-floor $k_ms ms, $k_series series (idle $k_base ms/s)" >&2
kill "$epid" "$kpid"; wait "$kpid" 2>/dev/null || true

rows+=("scrape vigil $v_ms $v_series $v_bytes" "scrape keepalived $k_ms $k_series $k_bytes")
printf '%s\n' "${rows[@]}" | python3 -c '
import json, statistics, sys
memory, scrape = {}, {}
for line in sys.stdin:
    kind, daemon, *values = line.split()
    if kind == "memory":
        memory.setdefault(daemon, []).append((int(values[0]), int(values[1])))
    else:
        scrape[daemon] = {"cpu_ms": float(values[0]), "series": int(values[1]), "bytes": int(values[2])}
med = lambda xs: statistics.median(xs) / 1024
k = memory["keepalived"]; v = memory["vigil"]
out = {"memory_mb": {"keepalived": med([a for a, _ in k]), "exporter_floor": med([b for _, b in k]),
                     "keepalived_plus_exporter": med([a + b for a, b in k]), "vigil": med([a for a, _ in v])},
       "scrape": scrape}
json.dump(out, open(sys.argv[1], "w"), indent=2)
m, s = out["memory_mb"], out["scrape"]
kp, vg, ka = m["keepalived_plus_exporter"], m["vigil"], s["keepalived"]
print("| idle RSS, lvs02.conf, backup, after 5 scrapes (median of %d) | %.1f MB + exporter-floor %.1f MB = %.1f MB | %.1f MB | %.2f |"
      % (len(v), m["keepalived"], m["exporter_floor"], kp, vg, vg / kp))
print("| CPU of one scrape, 50 instances + 1,000 real servers | %.2f ms (%d series) | %.2f ms (%d series) | %.2f |"
      % (ka["cpu_ms"], ka["series"], s["vigil"]["cpu_ms"], s["vigil"]["series"], s["vigil"]["cpu_ms"] / max(ka["cpu_ms"], 1e-9)))
' "$OUT/status.json"
