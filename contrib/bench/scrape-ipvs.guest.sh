#!/bin/sh
# Guest side of contrib/bench/scrape-ipvs.sh (runs as /test.sh in the kernel lab, busybox sh, in
# /work: bench.env, benchtool, full.conf, vrrp.conf).
# The real servers are every address of 172.16.0.0/12, made local with one route and served by
# `benchtool acceptor` on the wildcard address, so every TCP_CHECK passes and the table stays
# whole; the VRRP instances run on a dummy eth0 (each becomes master of its VIP alone).
# ROUNDS times, alternating: Vigil on full.conf (the IPVS table whole, so every scrape dumps
# IPVS's services and destinations with their STATS64 counters) and on vrrp.conf (the same 50
# instances, no virtual server: the part of a scrape that is the same on the host, which gives
# the host/guest factor). For each: SCRAPES scrapes by `benchtool scrape`; the daemon's CPU over
# them minus its idle CPU over the same time (measured over IDLE s before). Then the CPU of one
# `ipvsadm -Ln --stats --exact` (exec included) on the whole table, the independent reader of
# the same counters, and whether the scrape's keepalived_lvs_rs_* series name every real server.
# Prints `BENCH-JSON {...}`; exits 1 on failure.
set -eu
. /work/bench.env
. /work/guest-common.sh
B=/work/benchtool
want_dests=$((SERVICES * REALS))
HZ=100 # USER_HZ: /proc/PID/stat counts in 1/100 s

count_table() { ipvsadm -Ln | awk '/^TCP/ { s++ } /^  -> [0-9]/ { d++ } END { print s + 0, d + 0 }'; }

ip link add eth0 type dummy
ip link set eth0 up
ip addr add 10.200.0.1/24 dev eth0
ip route add local 172.16.0.0/12 dev lo
ip link set lo up
$B acceptor 80 0.0.0.0 >/tmp/acceptor.log 2>&1 &
apid=$!
until grep -q listening /tmp/acceptor.log; do sleep 0.01; done
modprobe ip_vs_wlc

# The children's CPU ticks of a shell that ran `ipvsadm -Ln --stats --exact` IPVSADM_RUNS times
# (cutime+cstime, counted once they are reaped).
ipvsadm_runs() {
    sh -c 'for i in $(seq 1 '"$IPVSADM_RUNS"'); do ipvsadm -Ln --stats --exact >/dev/null; done; awk "{ print \$16 + \$17 }" /proc/$$/stat'
}

failed=0
# measure NAME CONF: one round; appends a JSON object to /tmp/results-NAME.
measure() {
    name=$1 conf=$2
    rm -f /tmp/vigil.pid /tmp/vigil.sock
    "$VIGIL" -n -l -f "$conf" -p /tmp/vigil.pid --control /tmp/vigil.sock --metrics 127.0.0.1:9165 >"/tmp/$name.log" 2>&1 &
    dpid=$!
    i=0
    if [ "$name" = full ]; then
        while :; do
            set -- $(count_table)
            [ "$1" != "$SERVICES" ] || [ "$2" != "$want_dests" ] || break
            i=$((i + 1))
            if [ $i -ge 240 ] || ! alive "$dpid"; then
                echo "scrape-ipvs: the table has $1 services, $2 destinations (want $SERVICES, $want_dests); Vigil's log:"
                tail -n 20 "/tmp/$name.log" | sed 's/^/  vigil: /'
                kill -KILL "$dpid" 2>/dev/null; wait "$dpid" || true
                return 1
            fi
            sleep 0.5
        done
    fi
    # Every instance master (3 adverts' time and a little), a first scrape untimed (TCG
    # translates the code it runs first), then the idle rate, then the scrapes.
    sleep 5
    $B scrape 9165 3 >/dev/null || { kill -KILL "$dpid"; wait "$dpid" || true; return 1; }
    set -- $($B cputicks "$dpid"); i0=$1; w0=$($B now)
    sleep "$IDLE"
    set -- $($B cputicks "$dpid"); i1=$1; w1=$($B now)
    set -- $($B cputicks "$dpid"); c0=$1 u0=$2 k0=$3; s0=$($B now)
    read -r bytes samples lvs <<EOF
$($B scrape 9165 "$SCRAPES" 'keepalived_lvs_rs_conn{')
EOF
    set -- $($B cputicks "$dpid"); c1=$1 u1=$2 k1=$3; s1=$($B now)
    ok=true
    [ -n "$bytes" ] || { echo "scrape-ipvs: $name: a scrape failed"; ok=false; bytes=0 samples=0 lvs=0; }
    # gen2brain's keepalived_lvs_rs_conn: one series for each real server, every one named.
    if [ "$name" = full ] && [ "$lvs" != "$want_dests" ]; then
        echo "scrape-ipvs: full: keepalived_lvs_rs_conn has $lvs series, want $want_dests"
        ok=false
    fi
    ipvsadm_ticks=0 ipvsadm_empty_ticks=0
    [ "$name" = full ] && ipvsadm_ticks=$(ipvsadm_runs)
    kill -TERM "$dpid"
    $B waitexit "$dpid" 30000 >/dev/null || kill -KILL "$dpid"
    wait "$dpid" || true
    ipvsadm -C
    # The same runs on an empty table: what ipvsadm costs before it reads anything (the exec,
    # the dynamic linker, the family lookup), to tell it from the reading.
    [ "$name" = full ] && ipvsadm_empty_ticks=$(ipvsadm_runs)
    line=$(awk -v idle="$((i1 - i0))" -v iw="$((w1 - w0))" -v c="$((c1 - c0))" -v sw="$((s1 - s0))" -v n="$SCRAPES" \
        -v hz=$HZ -v bytes="$bytes" -v samples="$samples" -v lvs="$lvs" -v it="$ipvsadm_ticks" -v ie="$ipvsadm_empty_ticks" -v u="$((u1 - u0))" -v k="$((k1 - k0))" \
        -v runs="$IPVSADM_RUNS" -v ok="$ok" 'BEGIN {
        rate = idle / hz / (iw / 1e9); spent = c / hz - rate * sw / 1e9
        printf "{\"scrapes\": %d, \"scrape_s\": %.3f, \"cpu_ticks\": %d, \"idle_cpu_ms_per_s\": %.3f, ", n, sw / 1e9, c, rate * 1000
        printf "\"cpu_ms_per_scrape\": %.3f, \"bytes\": %d, \"samples\": %d, \"rs_conn_series\": %d, ", 1000 * spent / n, bytes, samples, lvs
        printf "\"user_ticks\": %d, \"sys_ticks\": %d, \"ipvsadm_cpu_ms_per_run\": %.3f, ", u, k, 1000 * it / hz / runs
        printf "\"ipvsadm_empty_cpu_ms_per_run\": %.3f, \"valid\": %s}", 1000 * ie / hz / runs, ok
    }')
    echo "round $round, $name: $line"
    echo "$line" >>"/tmp/results-$name"
    [ "$ok" = true ]
}

for round in $(seq 1 "$ROUNDS"); do
    measure full /work/full.conf || failed=1
    measure vrrp /work/vrrp.conf || failed=1
done
kill -TERM "$apid"
wait "$apid" || true

printf 'BENCH-JSON {"benchmark": "scrape-ipvs", "kernel": "%s", "services": %s, "reals": %s, "instances": %s, "scrapes": %s, "rounds": %s, "guest": {%s}}\n' \
    "$(uname -r)" "$SERVICES" "$REALS" "$INSTANCES" "$SCRAPES" "$ROUNDS" "$(bench_results full vrrp)"
exit "$failed"
