#!/bin/sh
# Guest side of contrib/bench/reload.sh (runs as /test.sh in the kernel lab, busybox sh, in
# /work: bench.env, benchtool, base.conf, plus.conf).
# The real servers are every address of 172.16.0.0/12, made local with one route and served by
# `benchtool acceptor` on the wildcard address, so every TCP_CHECK passes and the table stays
# whole; the VRRP instances run on a dummy eth0 (each becomes master of its VIP alone).
# For each daemon, ROUNDS times, alternating: start on base.conf, wait for the whole table, then
#   1. SIGHUP with the file unchanged: the time until the daemon says the reload is done
#      (keepalived: "Reload complete", logged once every child has read and applied the file;
#      Vigil: its "Reload of" line), and, in a second reload counted on an nlmon device, the
#      generic-netlink (IPVS) requests the daemon sends for it;
#   2. SIGHUP with plus.conf (one more virtual server with REALS real servers): the time until
#      the daemon says it is done, and until `ipvsadm` shows the new service whole.
# Prints `BENCH-JSON {...}`; exits 1 on failure.
set -eu
. /work/bench.env
. /work/guest-common.sh
B=/work/benchtool
want_services=$SERVICES
want_dests=$((SERVICES * REALS))

count_table() { ipvsadm -Ln | awk '/^TCP/ { s++ } /^  -> [0-9]/ { d++ } END { print s + 0, d + 0 }'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
# The daemon and its children (keepalived: parent, checker, VRRP).
family() { echo "$1"; for c in $(cat /proc/*/stat 2>/dev/null | awk -v p="$1" '$4 == p { print $1 }'); do echo "$c"; done; }

ip link add eth0 type dummy
ip link set eth0 up
ip addr add 10.200.0.1/24 dev eth0
ip route add local 172.16.0.0/12 dev lo
ip link add nlmon0 type nlmon
ip link set nlmon0 up
$B acceptor 80 0.0.0.0 >/tmp/acceptor.log 2>&1 &
apid=$!
until grep -q listening /tmp/acceptor.log; do sleep 0.01; done
modprobe ip_vs_wlc

# counted_reload FILE: SIGHUP with FILE as the configuration while `benchtool nlcount` counts,
# on the nlmon device, every netlink request sent in the guest; sets genl and rtnl to the
# requests (messages, not syscalls: Vigil batches many in one sendmsg) that went to generic
# netlink (IPVS, and family lookups: keepalived closes and reopens its IPVS socket) and to
# rtnetlink. Nothing else talks netlink in the window (ipvsadm is not run in it). Nothing is
# traced, so the daemon runs at its own speed (under strace, Vigil's reload did not finish
# within 300 s in one run of make bench).
counted_reload() {
    file=$1
    cp "$file" /tmp/active.conf
    $B nlcount nlmon0 >/tmp/nlcount.txt 2>&1 &
    cpid=$!
    sleep 1
    : >"/tmp/$name.log"
    kill -HUP "$dpid"
    $B waitlog "/tmp/$name.log" "$pattern" 120000 "$dpid" >/dev/null 2>&1 || echo "reload: $name: no '$pattern' while counting"
    sleep 2
    kill -INT "$cpid"; wait "$cpid" 2>/dev/null || true
    set -- $(cat /tmp/nlcount.txt)
    [ "$#" = 4 ] || { echo "reload: $name: nlcount said: $*"; set -- null null null 0; }
    [ "$4" = 0 ] || { echo "reload: $name: nlcount dropped $4 packets: counts not valid"; set -- null null null "$4"; }
    genl=$1 rtnl=$2
    echo "reload: $name: $(basename "$file"): $genl generic-netlink and $rtnl rtnetlink requests"
}

failed=0
run_daemon() { # NAME PATTERN, then the command (its config is /tmp/active.conf)
    name=$1 pattern=$2
    shift 2
    cp /work/base.conf /tmp/active.conf
    rm -f /tmp/bench-*.pid
    : >"/tmp/$name.log"
    "$@" >>"/tmp/$name.log" 2>&1 &
    dpid=$!
    i=0
    while :; do
        alive "$dpid" || { echo "reload: $name exited at start:"; tail -n 20 "/tmp/$name.log"; return 1; }
        set -- $(count_table)
        [ "$1" != "$want_services" ] || [ "$2" != "$want_dests" ] || break
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "reload: $name: table $1 services, $2 destinations after 300 s"; kill -KILL "$dpid"; return 1; }
        sleep 0.5
    done
    # The VRRP instances become master (3 s + skew) and the first checks run.
    sleep "$SETTLE"

    # 1. The same file again.
    : >"/tmp/$name.log"
    t0=$($B now)
    kill -HUP "$dpid"
    t1=$($B waitlog "/tmp/$name.log" "$pattern" 120000 "$dpid" 2>/dev/null) || { echo "reload: $name: no '$pattern' after the unchanged reload"; tail -n 20 "/tmp/$name.log"; return 1; }
    unchanged_ms=$(ms "$t0" "$t1")
    sleep 2
    # The same again, counting what goes to generic netlink (IPVS).
    counted_reload /work/base.conf
    unchanged_genl=$genl unchanged_rtnl=$rtnl
    sleep 2

    # 2. One more virtual server.
    cp /work/plus.conf /tmp/active.conf
    : >"/tmp/$name.log"
    t0=$($B now)
    kill -HUP "$dpid"
    t1=$($B waitlog "/tmp/$name.log" "$pattern" 120000 "$dpid" 2>/dev/null) || { echo "reload: $name: no '$pattern' after adding a service"; return 1; }
    i=0
    while [ "$(ipvsadm -Ln -t 10.9.0.10:80 2>/dev/null | grep -c '^  -> [0-9]')" != "$REALS" ]; do
        i=$((i + 1)); [ $i -lt 30000 ] || { echo "reload: $name: the new service never appeared"; return 1; }
        sleep 0.005
    done
    t2=$($B now)
    set -- $(count_table)
    whole=$([ "$1" = $((want_services + 1)) ] && [ "$2" = $((want_dests + REALS)) ] && echo true || echo false)
    added_log_ms=$(ms "$t0" "$t1")
    added_table_ms=$(ms "$t0" "$t2")
    # The counting's own check: back to base.conf, i.e. the new service removed (Vigil: its
    # REALS destinations and the service; keepalived as many or more).
    sleep 2
    counted_reload /work/base.conf
    removal_genl=$genl

    kill -TERM "$dpid"
    $B waitexit "$dpid" 60000 >/dev/null || { echo "reload: $name did not stop within 60 s"; kill -KILL "$dpid"; }
    wait "$dpid" || true
    ipvsadm -C
    ip -4 addr flush dev eth0
    ip addr add 10.200.0.1/24 dev eth0
    line="{\"unchanged_ms\": $unchanged_ms, \"unchanged_genl_messages\": $unchanged_genl, \"unchanged_rtnl_messages\": $unchanged_rtnl, \"added_service_done_ms\": $added_log_ms, \"added_service_in_table_ms\": $added_table_ms, \"removal_genl_messages\": $removal_genl, \"table_whole_after\": $whole}"
    echo "round $round, $name: $line"
    echo "$line" >>"/tmp/results-$name"
}

vigil_error=
for round in $(seq 1 "$ROUNDS"); do
    run_daemon keepalived "Reload complete" /usr/sbin/keepalived -n -l -D -f /tmp/active.conf \
        -p /tmp/bench-ka.pid -c /tmp/bench-ka-checkers.pid -r /tmp/bench-ka-vrrp.pid || failed=1
    sleep 2
    if [ -n "$VIGIL" ] && [ -z "$vigil_error" ]; then
        run_daemon vigil "Reload of" "$VIGIL" -n -l -f /tmp/active.conf -p /tmp/bench-vigil.pid || { failed=1; vigil_error=true; }
        sleep 2
    fi
done
kill -TERM "$apid"
wait "$apid" || true

results=$(bench_results keepalived vigil)
printf 'BENCH-JSON {"benchmark": "reload", "kernel": "%s", "services": %s, "reals": %s, "instances": %s, "delay_loop": %s, "rounds": %s, "results": {%s}}\n' \
    "$(uname -r)" "$SERVICES" "$REALS" "$INSTANCES" "$DELAY_LOOP" "$ROUNDS" "$results"
exit "$failed"
