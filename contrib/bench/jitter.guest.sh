#!/bin/sh
# Guest side of contrib/bench/jitter.sh (runs as /test.sh in the kernel lab, busybox sh, in /work:
# bench.env, benchtool, jitter-idle.conf, jitter-checks.conf). One VRRP instance, MASTER on the
# dummy vr0 (multicast on), advert_int 1; with jitter-checks.conf also SERVICES x REALS HTTP_GETs
# against `benchtool acceptor --http` on bench0. For each round, each daemon, each load: wait for
# the instance's adverts (and the whole IPVS table), WARMUP s, then the kernel's timestamp of
# every advert on vr0 for WINDOW s (benchtool adverts). The interval between adverts against
# advert_int is the jitter. Prints `BENCH-JSON {...}`; exits 1 on failure.
set -eu
. /work/bench.env
. /work/guest-common.sh
B=/work/benchtool
want_dests=$((SERVICES * REALS))
count_table() { ipvsadm -Ln | awk '/^TCP/ { s++ } /^  -> [0-9]/ { d++ } END { print s + 0, d + 0 }'; }

ip link add vr0 type dummy
ip link set vr0 multicast on up
ip addr add 10.60.0.1/24 dev vr0
bench_real_servers --http
modprobe ip_vs_rr

failed=0
measure() { # NAME LOAD, then the command
    name=$1 load=$2
    shift 2
    rm -f /tmp/bench-*.pid
    "$@" >"/tmp/$name-$load.log" 2>&1 &
    dpid=$!
    # Ready: an advert on vr0 (MASTER), and with checkers the whole table in the kernel.
    i=0
    while :; do
        if ! alive "$dpid"; then
            echo "jitter: $name ($load) exited at start; its log:"; tail -n 20 "/tmp/$name-$load.log" | sed "s/^/  /"
            return 1
        fi
        if [ "$load" = idle ] || [ "$(count_table)" = "$SERVICES $want_dests" ]; then
            [ -n "$($B adverts vr0 2)" ] && break
        fi
        i=$((i + 1))
        [ $i -lt 60 ] || { echo "jitter: $name ($load) not ready after 120 s"; kill -KILL "$dpid"; wait "$dpid" || true; return 1; }
    done
    sleep "$WARMUP"
    $B adverts vr0 "$WINDOW" >"/tmp/adverts-$name-$load"
    alive "$dpid" || { echo "jitter: $name ($load) died during the window"; return 1; }
    ok=true
    if [ "$load" = checks ] && [ "$(count_table)" != "$SERVICES $want_dests" ]; then
        echo "jitter: $name: checks failed during the window (table: $(count_table))"; ok=false
    fi
    kill -TERM "$dpid"
    $B waitexit "$dpid" 30000 >/dev/null || kill -KILL "$dpid"
    wait "$dpid" || true
    ipvsadm -C
    # Intervals between consecutive adverts, minus advert_int (1 s), in microseconds.
    line=$(awk -v name="$name" -v load="$load" -v ok="$ok" '
        NR > 1 { d = ($1 - p - 1) * 1e6; dev[n++] = (d < 0 ? -d : d); sum += d } { p = $1 }
        END {
            if (n == 0) { printf "{\"adverts\": %d, \"valid\": false}", NR; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (dev[j] < dev[i]) { t = dev[i]; dev[i] = dev[j]; dev[j] = t }
            p99 = dev[int(0.99 * (n - 1) + 0.5)]
            printf "{\"adverts\": %d, \"mean_interval_excess_us\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"valid\": %s}", \
                NR, sum / n, dev[int(0.5 * (n - 1))], p99, dev[n - 1], ok
        }' "/tmp/adverts-$name-$load")
    echo "round $round, $name, $load: $line"
    # Which adverts were late, for whoever reads the log: advert number and distance in ms.
    awk 'NR > 1 { d = ($1 - p - 1) * 1e3; if (d > 1 || d < -1) printf " #%d %+.1f", NR, d } { p = $1 } END { print "" }' \
        "/tmp/adverts-$name-$load" | sed "s/^/  intervals off by more than 1 ms:/"
    echo "$line" >>"/tmp/results-$name-$load"
    [ "$ok" = true ]
}

for round in $(seq 1 "$ROUNDS"); do
    for load in idle checks; do
        measure keepalived "$load" /usr/sbin/keepalived -n -l -G -f "/work/jitter-$load.conf" \
            -p /tmp/bench-ka.pid -c /tmp/bench-ka-checkers.pid -r /tmp/bench-ka-vrrp.pid || failed=1
        sleep 2
        if [ -n "$VIGIL" ]; then
            measure vigil "$load" "$VIGIL" -n -l -f "/work/jitter-$load.conf" -p /tmp/bench-vigil.pid || failed=1
            sleep 2
        fi
    done
done
kill -TERM "$apid"
wait "$apid" || true
results=$(bench_results keepalived-idle keepalived-checks vigil-idle vigil-checks)
printf 'BENCH-JSON {"benchmark": "jitter", "kernel": "%s", "services": %s, "reals": %s, "checks": %s, "delay_loop": %s, "advert_int_s": 1, "warmup_s": %s, "window_s": %s, "rounds": %s, "results": {%s}}\n' \
    "$(uname -r)" "$SERVICES" "$REALS" "$want_dests" "$DELAY_LOOP" "$WARMUP" "$WINDOW" "$ROUNDS" "$results"
exit "$failed"
