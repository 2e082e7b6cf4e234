#!/bin/sh
# Guest side of contrib/bench/tcpcheck-cpu.sh (runs as /test.sh in the kernel lab, busybox sh, in
# /work = the host's work dir: bench.env, benchtool, tcpcheck-cpu.conf).
# Real servers: REALS addresses 10.30.0.1.. on a dummy interface, port 80, served by
# `benchtool acceptor` (epoll, accept and close). Then, one after the other, keepalived -C and
# Vigil run the same configuration; for each: wait until `ipvsadm -Ln` shows the whole table,
# WARMUP s, then a WINDOW s window over which we take the CPU ticks (user+sys, /proc/PID/stat,
# the daemon and all its descendants), the acceptor's ticks and accepted connections (= TCP checks
# done), and the guest's /proc/stat; ROUNDS times, alternating the daemons. Prints
# `BENCH-JSON {...}` for the host; exits 1 on failure.
set -eu
. /work/bench.env
. /work/guest-common.sh
B=/work/benchtool
CONF=/work/tcpcheck-cpu.conf
want_dests=$((SERVICES * REALS))
expected_rate=$(awk -v n="$want_dests" -v d="$DELAY_LOOP" 'BEGIN { printf "%.1f", n / d }')
HZ=100 # USER_HZ: /proc/PID/stat and /proc/stat count in 1/100 s

# "SERVICES DESTINATIONS NOT_WEIGHT_1" as `ipvsadm -Ln` shows them.
count_table() {
    ipvsadm -Ln >/tmp/table.txt
    awk '/^TCP/ { s++ } /^  -> [0-9]/ { d++; if ($4 != 1) w++ } END { print s + 0, d + 0, w + 0 }' /tmp/table.txt
}
# "BUSY TOTAL" ticks of the whole guest (busy = all but idle and iowait).
guest_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
# Cumulative connections accepted by the acceptor: SIGUSR1 makes it print "accepted N".
accepted() {
    n0=$(wc -l </tmp/acceptor.log)
    kill -USR1 "$apid"
    i=0
    while [ "$(wc -l </tmp/acceptor.log)" -eq "$n0" ]; do
        i=$((i + 1)); [ $i -lt 500 ] || { echo "acceptor does not answer" >&2; return 1; }
        sleep 0.01
    done
    tail -n 1 /tmp/acceptor.log | awk '{ print $2 }'
}

# --- real servers ---------------------------------------------------------------------------
bench_real_servers "${ACCEPTOR_MODE:-}"
# Schedulers load on first use; load it now so neither daemon pays for it.
modprobe ip_vs_rr

# Idle baseline of the guest (kernel threads, timers) with the acceptor waiting.
set -- $(guest_ticks); b0=$1 t0=$2
sleep 3
set -- $(guest_ticks)
idle_busy=$(awk -v b="$(($1 - b0))" -v t="$(($2 - t0))" 'BEGIN { printf "%.1f", 100 * b / t }')
echo "guest busy with nothing running: $idle_busy %"
echo "each daemon: $SERVICES virtual servers x $REALS real servers, TCP_CHECK every $DELAY_LOOP s = $expected_rate checks/s expected; warm-up $WARMUP s, window $WINDOW s"

failed=0
run_daemon() { # NAME, then the command
    name=$1
    shift
    rm -f /tmp/bench-*.pid "/tmp/$name.log"
    "$@" >"/tmp/$name.log" 2>&1 &
    dpid=$!
    # Ready when the whole table is in the kernel (both daemons add every real server at start).
    i=0
    while :; do
        if ! alive "$dpid"; then
            wait "$dpid" && rc=0 || rc=$?
            echo "tcpcheck-cpu: $name exited (status $rc) at start; its log:"
            tail -n 20 "/tmp/$name.log" | sed "s/^/  $name: /"
            return 1
        fi
        set -- $(count_table)
        [ "$1" != "$SERVICES" ] || [ "$2" != "$want_dests" ] || break
        i=$((i + 1))
        if [ $i -ge 240 ]; then
            echo "tcpcheck-cpu: $name: the table has $1 services, $2 destinations after 120 s (want $SERVICES, $want_dests); its log:"
            tail -n 20 "/tmp/$name.log" | sed "s/^/  $name: /"
            kill -TERM "$dpid"; $B waitexit "$dpid" 30000 >/dev/null || kill -KILL "$dpid"; wait "$dpid" || true
            return 1
        fi
        sleep 0.5
    done
    sleep "$WARMUP"

    a0=$(accepted); set -- $($B cputicks "$dpid"); c0=$1 u0=$2 s0=$3
    set -- $($B cputicks "$apid"); x0=$1
    set -- $(guest_ticks); g0=$1 gt0=$2
    w0=$($B now)
    sleep "$WINDOW"
    a1=$(accepted); set -- $($B cputicks "$dpid"); c1=$1 u1=$2 s1=$3 nprocs=$4
    set -- $($B cputicks "$apid"); x1=$1
    set -- $(guest_ticks); g1=$1 gt1=$2
    w1=$($B now)

    ok=true stable=true
    alive "$dpid" || { echo "tcpcheck-cpu: $name died during the window"; ok=false; }
    set -- $(count_table)
    if [ "$1" != "$SERVICES" ] || [ "$2" != "$want_dests" ] || [ "$3" != 0 ]; then
        echo "tcpcheck-cpu: $name: after the window the table has $1 services, $2 destinations, $3 with a weight other than 1 (want $SERVICES, $want_dests, 0): checks failed"
        ok=false
        stable=false
    fi
    kill -TERM "$dpid"
    $B waitexit "$dpid" 30000 >/dev/null || { echo "tcpcheck-cpu: $name did not exit within 30 s of SIGTERM"; kill -KILL "$dpid"; }
    wait "$dpid" || true
    ipvsadm -C

    rate_ok=$(awk -v a="$((a1 - a0))" -v w="$(((w1 - w0) / 1000))" -v e="$expected_rate" 'BEGIN { r = a / (w / 1e6); print (r < 0.5 * e) ? "low" : (r < 0.9 * e) ? "short" : "ok" }')
    case $rate_ok in
        low) echo "tcpcheck-cpu: $name did under half the expected checks: not a valid measurement"; ok=false ;;
        short) echo "tcpcheck-cpu: WARNING: $name did under 90% of the expected checks (the guest may be saturated: guest_busy_percent)" ;;
    esac
    line=$(awk -v name="$name" -v w="$(((w1 - w0) / 1000))" -v hz=$HZ -v c="$((c1 - c0))" -v u="$((u1 - u0))" \
        -v s="$((s1 - s0))" -v n="$nprocs" -v a="$((a1 - a0))" -v x="$((x1 - x0))" -v g="$((g1 - g0))" \
        -v gt="$((gt1 - gt0))" -v expected="$expected_rate" -v ok="$ok" -v stable="$stable" 'BEGIN {
        sec = w / 1e6; rate = a / sec
        printf "{\"window_s\": %.3f, \"processes\": %d, \"cpu_ticks\": %d, \"user_ticks\": %d, \"sys_ticks\": %d, ", sec, n, c, u, s
        printf "\"cpu_percent\": %.2f, \"checks\": %d, \"checks_per_s\": %.1f, \"expected_checks_per_s\": %s, ", 100 * c / hz / sec, a, rate, expected
        printf "\"cpu_ms_per_check\": %.3f, \"acceptor_cpu_percent\": %.2f, \"acceptor_cpu_ms_per_check\": %.3f, ", (a ? 1000 * c / hz / a : 0), 100 * x / hz / sec, (a ? 1000 * x / hz / a : 0)
        printf "\"guest_busy_percent\": %.1f, \"table_stable\": %s, \"valid\": %s}", 100 * g / gt, stable, ok
    }')
    echo "round $round, $name: $line"
    echo "$line" >>"/tmp/results-$name"
    [ "$ok" = true ]
}

# Alternate the daemons, so that a change in the host's load (which slows the guest) hits both.
vigil_error=
for round in $(seq 1 "$ROUNDS"); do
    run_daemon keepalived /usr/sbin/keepalived -n -l -G -C -f "$CONF" \
        -p /tmp/bench-ka.pid -c /tmp/bench-ka-checkers.pid -r /tmp/bench-ka-vrrp.pid || failed=1
    sleep 2
    if [ -n "$VIGIL" ] && [ -z "$vigil_error" ]; then
        # After a failure Vigil is not run again.
        run_daemon vigil "$VIGIL" -n -l -f "$CONF" -p /tmp/bench-vigil.pid || { failed=1; vigil_error=true; }
        sleep 2
    fi
done
kill -TERM "$apid"
wait "$apid" || true

# One JSON list of the rounds' objects per daemon.
results=$(bench_results keepalived vigil)

printf 'BENCH-JSON {"benchmark": "tcpcheck-cpu", "kernel": "%s", "services": %s, "reals": %s, "checks": %s, "delay_loop": %s, "connect_timeout": %s, "warmup_s": %s, "window_s": %s, "rounds": %s, "guest_idle_busy_percent": %s, "listener": "benchtool acceptor (epoll, accept+close)", "results": {%s}' \
    "$(uname -r)" "$SERVICES" "$REALS" "$want_dests" "$DELAY_LOOP" "$CONNECT_TIMEOUT" "$WARMUP" "$WINDOW" "$ROUNDS" "$idle_busy" "$results"
[ -z "$vigil_error" ] || printf ', "vigil_error": "vigil failed, see the console"'
printf '}\n'
exit "$failed"
