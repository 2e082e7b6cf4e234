#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder that reads outside input (libFuzzer + AddressSanitizer,
# Swift's -sanitize=fuzzer): VRRPFuzz (VRRP, IPv4/IPv6/AH framing), NetlinkFuzz (IPVS generic
# netlink replies), HTTPFuzz (HTTP_GET answers, whole and in pieces), ControlFuzz (control socket,
# /metrics requests, `vigil status` answers), ConfigFuzz (keepalived.conf, the whole language),
# RepliesFuzz (SMTP, DNS, UDP, ICMP replies, track files).
#
#   contrib/fuzz/run.sh                     # FUZZ_SECONDS (60) per target
#   FUZZ_SECONDS=600 FUZZ_TARGETS="ConfigFuzz" contrib/fuzz/run.sh
#   FUZZ_RUNS=10000000 contrib/fuzz/run.sh  # a number of executions per target instead of a time
#   FUZZ_MAX_LEN=4096 ...                   # shorter inputs (default 65536): more executions per second
#   FUZZ_REPORT=.build-fuzz/config.md ...   # a report of its own, for runs side by side on both cores
#
# Each target runs from seeds made of the repository's own data (contrib/fuzz/seeds.py) plus the
# corpus earlier runs grew (.build-fuzz/corpus, kept between runs). Any crash, leak, timeout
# (a single input over FUZZ_TIMEOUT s: a hang) or out-of-memory fails the run, leaves the input in
# .build-fuzz/artifacts and prints how to replay it. Figures (executions, exec/s, corpus, peak
# RSS) go to .build-fuzz/fuzz-report.md, which the README's testing table quotes.
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
# The longest input tried (libFuzzer's -max_len). Inputs from the corpus beyond it are cut.
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-65536}
TARGETS=${FUZZ_TARGETS:-"VRRPFuzz NetlinkFuzz HTTPFuzz ControlFuzz ConfigFuzz RepliesFuzz"}
OUT=.build-fuzz
mkdir -p "$OUT/artifacts" "$OUT/corpus"
# Seeds are made afresh in a directory of this run's own, so that two runs can go side by side.
SEEDS=$(mktemp -d /tmp/vigil-fuzz-seeds.XXXXXX)
trap 'rm -rf "$SEEDS"' EXIT
python3 contrib/fuzz/seeds.py "$SEEDS" >/dev/null

for target in $TARGETS; do
    echo "fuzz: building $target (release, -sanitize=fuzzer,address)"
    VIGIL_FUZZ=1 swift build -c release --build-path "$OUT" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address \
        --product "$target" 2>&1 | grep -v "Cannot export local symbol '__asan_extra_spill_area'" | tail -n 2
done

report=${FUZZ_REPORT:-$OUT/fuzz-report.md}
{
    echo "| target | seconds | executions | exec/s | corpus | peak RSS | result |"
    echo "|---|---|---|---|---|---|---|"
} >"$report"
failed=0
for target in $TARGETS; do
    corpus="$OUT/corpus/$target"
    mkdir -p "$corpus"
    log="$OUT/$target.log"
    if [ -n "${FUZZ_RUNS:-}" ]; then echo "fuzz: $target for $FUZZ_RUNS executions"; else echo "fuzz: $target for $FUZZ_SECONDS s"; fi
    set +e
    if [ -n "${FUZZ_RUNS:-}" ]; then budget=(-runs="$FUZZ_RUNS"); else budget=(-max_total_time="$FUZZ_SECONDS"); fi
    started=$(date +%s)
    # malloc_context_size=0: no stack recorded per allocation (about 14 % more executions of
    # ConfigFuzz); a finding is replayed with full stacks by the command printed below.
    ASAN_OPTIONS=detect_leaks=1:malloc_context_size=0 "$OUT/release/$target" "${budget[@]}" -timeout="$FUZZ_TIMEOUT" \
        -rss_limit_mb=2048 -max_len="$FUZZ_MAX_LEN" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$target-" \
        "$corpus" "$SEEDS/$target" >"$log" 2>&1
    rc=$?
    set -e
    seconds=$(($(date +%s) - started))
    stat() { awk -v k="stat::$1:" '$1 == k { print $2 }' "$log" | tail -n 1; }
    runs=$(stat number_of_executed_units); speed=$(stat average_exec_per_sec); rss=$(stat peak_rss_mb)
    units=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then result="no finding"; else result="**FAILED** (exit $rc)"; failed=1; fi
    echo "| $target | $seconds | ${runs:-?} | ${speed:-?} | $units | ${rss:-?} MB | $result |" >>"$report"
    echo "fuzz: $target: ${runs:-?} executions, ${speed:-?}/s, corpus $units, $result"
    if [ "$rc" -ne 0 ]; then
        # (|| true: with nothing to show, grep's status must not end the remaining targets.)
        grep -E "ERROR|SUMMARY|Fatal error|panic|artifact" "$log" | head -n 20 || true
        echo "fuzz: replay with: $OUT/release/$target $OUT/artifacts/$target-*"
    fi
done
cat "$report"
exit "$failed"
