#!/bin/sh
# Guest side of contrib/bench/ipvs-apply.sh (runs as /test.sh in the kernel lab, busybox sh, in
# /work = the host's work dir: bench.env, benchtool, ipvs-apply.rules, ipvs-apply.conf).
# For REPS rounds, interleaved: `ipvsadm -R < rules` timed with CLOCK_MONOTONIC (benchtool now),
# then Vigil timed from spawn to its `IPVS: table programmed:` log line; each checked with
# `ipvsadm -Ln`, then `ipvsadm -C`. Prints `BENCH-JSON {...}` for the host; exits 1 on failure.
set -eu
. /work/bench.env
B=/work/benchtool
want_dests=$((SERVICES * REALS))
PATTERN='IPVS: table programmed:'

# "SERVICES DESTINATIONS" as `ipvsadm -Ln` shows them.
count_table() {
    ipvsadm -Ln >/tmp/table.txt
    echo "$(grep -c '^TCP' /tmp/table.txt || true) $(grep -c '^  -> [0-9]' /tmp/table.txt || true)"
}
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "null"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json_list() { echo "$*" | awk '{ s = ""; for (i = 1; i <= NF; i++) s = s (i > 1 ? ", " : "") $i; print "[" s "]" }'; }

# Load the scheduler module now (a first `-s rr` autoloads it, ~0.3 s under TCG) and warm the
# page cache for ipvsadm, so that round 1 measures the same thing as the others.
modprobe ip_vs_rr
ipvsadm -C
set -- $(count_table)
[ "$1 $2" = "0 0" ] || { echo "ipvs-apply: the table is not empty at start: $1 $2"; exit 1; }

# Starts Vigil on CONF and waits for its line; sets vpid, t1 (when the line was seen), or
# vigil_error (and returns 1) if Vigil exits first or takes over 120 s.
start_vigil() {
    rm -f /tmp/vigil.log /tmp/vigil-bench.pid
    "$VIGIL" -n -l -f "$1" -p /tmp/vigil-bench.pid >/tmp/vigil.log 2>&1 &
    vpid=$!
    rc=0
    t1=$($B waitlog /tmp/vigil.log "$PATTERN" 120000 "$vpid" 2>/tmp/vigil.match) || rc=$?
    [ "$rc" = 0 ] && return 0
    if [ "$rc" = 2 ]; then
        wait "$vpid" && vrc=0 || vrc=$?
        vigil_error="vigil exited (status $vrc) before logging '$PATTERN'"
    else
        vigil_error="no '$PATTERN' line within 120 s"
        kill -KILL "$vpid" 2>/dev/null || true
        wait "$vpid" || true
    fi
    echo "ipvs-apply: $vigil_error; its log:"
    tail -n 20 /tmp/vigil.log | sed 's/^/  vigil: /'
    return 1
}
failed=0
vigil_error=
# Untimed warm-up of both sides with a small table: under TCG a program's first run also pays for
# translating its code.
ipvsadm -R </work/ipvs-apply-warmup.rules
ipvsadm -C
if [ -n "$VIGIL" ]; then
    if start_vigil /work/ipvs-apply-warmup.conf; then
        kill -TERM "$vpid"
        $B waitexit "$vpid" 30000 >/dev/null || kill -KILL "$vpid"
        wait "$vpid" || true
    else
        failed=1
    fi
    ipvsadm -C
fi

ref_ms= vigil_ms= vigil_reported= vigil_stop_ms= vigil_removed=
for round in $(seq 1 "$REPS"); do
    # --- ipvsadm -R ----------------------------------------------------------------------------
    t0=$($B now)
    ipvsadm -R </work/ipvs-apply.rules
    t1=$($B now)
    set -- $(count_table)
    if [ "$1" != "$SERVICES" ] || [ "$2" != "$want_dests" ]; then
        echo "ipvs-apply: round $round: after ipvsadm -R: $1 services, $2 destinations (want $SERVICES, $want_dests)"
        exit 1
    fi
    d=$(ms "$t0" "$t1")
    ref_ms="$ref_ms $d"
    echo "round $round: ipvsadm -R $d ms ($1 services, $2 destinations)"
    ipvsadm -C

    # --- Vigil ---------------------------------------------------------------------------------
    [ -n "$VIGIL" ] && [ -z "$vigil_error" ] || continue
    t0=$($B now)
    if ! start_vigil /work/ipvs-apply.conf; then
        vigil_error="round $round: $vigil_error"
        failed=1
        ipvsadm -C
        continue
    fi
    d=$(ms "$t0" "$t1")
    line=$(cat /tmp/vigil.match)
    reported=$(echo "$line" | sed -n 's/.* in \([0-9][0-9.]*\) *ms.*/\1/p')
    set -- $(count_table)
    svc=$1 dst=$2
    # SIGTERM by pid; Vigil removes the table it added before exiting.
    t2=$($B now)
    kill -TERM "$vpid"
    t3=$($B waitexit "$vpid" 30000) || { echo "ipvs-apply: vigil did not exit within 30 s of SIGTERM"; kill -KILL "$vpid"; t3=; }
    wait "$vpid" && vrc=0 || vrc=$?
    set -- $(count_table)
    left="$1 $2"
    if [ "$svc" != "$SERVICES" ] || [ "$dst" != "$want_dests" ]; then
        vigil_error="round $round: vigil programmed $svc services, $dst destinations (want $SERVICES, $want_dests)"
        echo "ipvs-apply: $vigil_error"
        failed=1
        ipvsadm -C
        continue
    fi
    vigil_ms="$vigil_ms $d"
    vigil_reported="$vigil_reported ${reported:-null}"
    [ -z "$t3" ] || vigil_stop_ms="$vigil_stop_ms $(ms "$t2" "$t3")"
    if [ "$left" = "0 0" ]; then vigil_removed="$vigil_removed true"; else vigil_removed="$vigil_removed false"; fi
    echo "round $round: vigil $d ms to '$PATTERN' (it says ${reported:-?} ms; $svc services, $dst destinations); SIGTERM to exit ${t3:+$(ms "$t2" "$t3") ms}, status $vrc, left behind: $left"
    ipvsadm -C
done

ref_med=$(echo "$ref_ms" | median)
printf 'BENCH-JSON {"benchmark": "ipvs-apply", "kernel": "%s", "services": %s, "reals": %s, "destinations": %s, "rounds": %s, ' \
    "$(uname -r)" "$SERVICES" "$REALS" "$want_dests" "$REPS"
printf '"ipvsadm_restore": {"command": "ipvsadm -R < rules (ipvsadm-restore without its ipvsadm -C)", "ms": %s, "median_ms": %s}' \
    "$(json_list $ref_ms)" "$ref_med"
if [ -n "$VIGIL" ]; then
    if [ -n "$vigil_ms" ]; then
        v_med=$(echo "$vigil_ms" | median)
        printf ', "vigil": {"command": "vigil -n -l -f CONF", "ms": %s, "median_ms": %s, "reported_ms": %s, "reported_median_ms": %s, "sigterm_to_exit_ms": %s, "table_removed_on_sigterm": %s' \
            "$(json_list $vigil_ms)" "$v_med" "$(json_list $vigil_reported)" \
            "$(echo "$vigil_reported" | tr ' ' '\n' | grep -v null | median)" \
            "$(json_list $vigil_stop_ms)" "$(json_list $vigil_removed)"
        [ -z "$vigil_error" ] || printf ', "error": "%s"' "$vigil_error"
        printf '}, "ratio_vigil_over_ipvsadm": %s' "$(awk -v v="$v_med" -v r="$ref_med" 'BEGIN { printf "%.4f", v / r }')"
    else
        printf ', "vigil": {"error": "%s"}' "$vigil_error"
    fi
fi
printf '}\n'
exit "$failed"
