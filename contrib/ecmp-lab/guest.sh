#!/bin/sh
# The ECMP lab, inside the kernel-lab guest (run by contrib/ecmp-lab/run.sh): three directors
# behind an FRR router doing BGP ECMP, two real servers, a client with long-lived connections.
#
#   client 10.1.0.2 ── router 10.1.0.1 / 10.0.0.1 (FRR bgpd, ECMP over 3 paths, L4 hash)
#                                  │ bridge "fab" (10.0.0.0/24)
#            ┌───────────────┬─────┴─────────┬───────────────┬──────────────┐
#     d1 10.0.0.11    d2 10.0.0.12    d3 10.0.0.13     rs1 10.0.0.21   rs2 10.0.0.22
#     vigil + FRR     vigil + FRR     vigil + FRR      echo server     echo server
#
# Each director: VIP 10.95.0.1 on lo, IPVS (per namespace) with lvs_sched mh (mh-port) and
# DR to the real servers, `vigil_announce` putting 10.95.0.1/32 in table 198 while the service
# has quorum, FRR's zebra importing table 198 and bgpd announcing it to the router. With
# lvs_sync_daemon (no instance) every director sends its connections and learns the others'.
#
# Two rounds, one with connection sync and one without: open CONNECTIONS connections, kill d1
# (its link goes, then its processes), count the connections that still echo, then open new
# ones and see where they land. Prints "RESULT key=value" lines for the test and the demo.
set -u
. /work/env                 # VIGIL=...
IP=/usr/bin/ip              # iproute2 (ip netns), copied in by run.sh
CONNECTIONS=${CONNECTIONS:-24}
say() { echo "# $*"; }
now() { awk '{ print $1 }' /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
wait_for() { limit=$1; shift; start=$(now); while ! "$@"; do
    awk -v a="$start" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && return 1; sleep 0.1; done; }
in_ns() { ns=$1; shift; $IP netns exec "$ns" "$@"; }

mount -t tmpfs tmpfs /run 2>/dev/null
mkdir -p /run/netns /etc/pam.d /etc/frr /var/run/frr /var/tmp/frr
# FRR runs as frr; vtysh authenticates through PAM (pam_permit, as Debian's /etc/pam.d/frr).
grep -q '^frr:' /etc/passwd 2>/dev/null || {
    echo "root:x:0:0:root:/root:/bin/sh" >>/etc/passwd
    echo "frr:x:100:101::/nonexistent:/bin/false" >>/etc/passwd
    printf 'root:x:0:\nfrr:x:101:\nfrrvty:x:102:frr,root\n' >>/etc/group
}
printf 'auth sufficient pam_permit.so\naccount sufficient pam_permit.so\n' >/etc/pam.d/frr
: >/etc/frr/vtysh.conf
chown frr:frr /var/run/frr /var/tmp/frr
modprobe bridge; modprobe veth; modprobe ip_vs_mh

build() {
    $IP link add fab type bridge mcast_snooping 0
    $IP link set fab up
    for ns in router d1 d2 d3 rs1 rs2 client; do $IP netns add $ns; in_ns $ns $IP link set lo up; done
    attach() { # attach NS ADDRESS: a veth from NS's eth0 to the bridge
        $IP link add "v$1" type veth peer name eth0 netns "$1"
        $IP link set "v$1" master fab up
        in_ns "$1" $IP addr add "$2/24" dev eth0
        in_ns "$1" $IP link set eth0 up
    }
    attach router 10.0.0.1
    attach d1 10.0.0.11; attach d2 10.0.0.12; attach d3 10.0.0.13
    attach rs1 10.0.0.21; attach rs2 10.0.0.22
    $IP link add vclient type veth peer name eth0 netns client
    $IP link set vclient netns router
    in_ns router $IP addr add 10.1.0.1/24 dev vclient
    in_ns router $IP link set vclient up
    in_ns client $IP addr add 10.1.0.2/24 dev eth0
    in_ns client $IP link set eth0 up
    in_ns client $IP route add default via 10.1.0.1
    in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
    for rs in rs1 rs2; do
        # DR real servers: the VIP on lo, never answering ARP for it, replies straight back.
        in_ns $rs $IP addr add 10.95.0.1/32 dev lo
        in_ns $rs sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        in_ns $rs $IP route add default via 10.0.0.1
        in_ns $rs nc -ll -p 80 -e /bin/cat &
    done
    for d in d1 d2 d3; do
        # The VIP local through a local route, not an address: zebra would prefer the
        # connected route of an address on lo to the one imported from table 198, and
        # `redistribute table` announces only the routes it selects.
        in_ns $d $IP route add local 10.95.0.1/32 dev lo table local
        in_ns $d sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        in_ns $d $IP route add default via 10.0.0.1
    done
}

frr() { # frr NS "zebra config" "bgpd config"
    dir=/tmp/frr-$1
    mkdir -p "$dir"; chown frr:frr "$dir"
    printf '%s\n' "$2" >"$dir/zebra.conf"
    printf '%s\n' "$3" >"$dir/bgpd.conf"
    in_ns "$1" /usr/lib/frr/zebra -d -f "$dir/zebra.conf" -i "$dir/zebra.pid" -u frr -g frr --vty_socket "$dir" -z "$dir/zserv.api" 2>"$dir/zebra.err"
    in_ns "$1" /usr/lib/frr/bgpd -d -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" -u frr -g frr --vty_socket "$dir" -z "$dir/zserv.api" 2>/dev/null
}
vtysh_in() { ns=$1; shift; in_ns "$ns" vtysh --vty_socket "/tmp/frr-$ns" "$@" 2>/dev/null; }

start_routing() {
    frr router "hostname router" "hostname router
router bgp 65000
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 neighbor DIRECTORS peer-group
 neighbor DIRECTORS remote-as 65001
 neighbor DIRECTORS timers 1 3
 neighbor DIRECTORS timers connect 1
 neighbor 10.0.0.11 peer-group DIRECTORS
 neighbor 10.0.0.12 peer-group DIRECTORS
 neighbor 10.0.0.13 peer-group DIRECTORS
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family"
    for i in 1 2 3; do director_frr $i; done
}

director_frr() { # director_frr N: zebra imports table 198, bgpd announces it to the router
    frr d$1 "hostname d$1
ip import-table 198" "hostname d$1
router bgp 65001
 bgp router-id 10.0.0.1$1
 no bgp ebgp-requires-policy
 neighbor 10.0.0.1 remote-as 65000
 neighbor 10.0.0.1 timers 1 3
 neighbor 10.0.0.1 timers connect 1
 address-family ipv4 unicast
  redistribute table 198
 exit-address-family"
}

vigil_conf() { # vigil_conf NAME SYNC(0|1)
    sync=""
    [ "$2" = 1 ] && sync="lvs_sync_daemon eth0 id 0"
    cat <<CONF
global_defs {
    router_id $1
    $sync
}
virtual_server 10.95.0.1 80 {
    delay_loop 1
    lb_algo mh
    mh-port
    mh-fallback
    lb_kind DR
    protocol TCP
    vigil_announce
    real_server 10.0.0.21 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.0.0.22 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
CONF
}

start_directors() { # start_directors SYNC
    for d in d1 d2 d3; do
        vigil_conf $d "$1" >/tmp/$d.conf
        in_ns $d "$VIGIL" -n -l -f /tmp/$d.conf -p /tmp/$d.pid --control /tmp/$d.sock >/tmp/$d.log 2>&1 &
        echo $! >/tmp/$d.vpid
    done
}

paths() { in_ns router $IP route show 10.95.0.1 | grep -c "nexthop via\|^10.95.0.1 via"; }
three_paths() { [ "$(paths)" = 3 ]; }
two_paths() { [ "$(paths)" = 2 ] && ! in_ns router $IP route show 10.95.0.1 | grep -q 10.0.0.11; }

open_connections() { # open_connections N PREFIX: each sends a line every 0.5 s and keeps its echo
    i=0
    while [ $i -lt "$1" ]; do
        i=$((i + 1))
        ( while :; do echo "$2-$i"; sleep 0.5; done ) | in_ns client nc 10.95.0.1 80 >/tmp/conn-$2-$i 2>/dev/null &
        echo $! >/tmp/conn-$2-$i.pid
    done
}
sizes() { for f in /tmp/conn-$1-*; do case $f in *.pid) ;; *) wc -c <"$f";; esac; done | tr '\n' ' '; }
# Connections alive: still echoing (their file grew over the last 3 s) and their nc not gone.
count_alive() {
    before=$(sizes "$1"); sleep 3; after=$(sizes "$1")
    set -- $before; alive=0
    for a in $after; do [ "$a" -gt "$1" ] && alive=$((alive + 1)); shift; done
    echo $alive
}
# Connections a director scheduled itself (its service's Conns counter; synced ones not counted).
scheduled_on() { in_ns "$1" ipvsadm -Ln --stats -t 10.95.0.1:80 2>/dev/null | awk '$1 == "TCP" { print $3 }'; }
frr_paths() { vtysh_in router -c "show ip route 10.95.0.1/32 json" | grep -c '"ip":"10.0.0.1[123]"'; }
frr_paths_are() { [ "$(frr_paths)" = "$1" ]; }

round() { # round NAME SYNC
    name=$1
    say "round $name: directors with$( [ "$2" = 1 ] || echo "out") connection sync"
    start_directors "$2"
    if ! wait_for 40 three_paths; then
        say "the router never had 3 paths:"; in_ns router $IP route show; vtysh_in router -c "show bgp summary"
        for d in d1 d2 d3; do sed "s/^/#   $d: /" /tmp/$d.log | tail -n 5; done
        echo "RESULT $name.paths=$(paths)"; return 1
    fi
    say "the router has 3 equal-cost paths to 10.95.0.1:"; in_ns router $IP route show 10.95.0.1 | sed 's/^/#   /'
    vtysh_in router -c "show ip route 10.95.0.1/32 json" | grep -c '"ip":"10.0.0.1[123]"' | sed "s/^/RESULT $name.frr_nexthops=/"
    vtysh_in d1 -c "show ip route json" | grep -q '"protocol":"table"' && echo "RESULT $name.d1_imports_table_198=yes"
    if [ "$name" = sync ]; then
        say "health decides: d3 loses its real servers (blackhole routes), so its quorum goes"
        t=$(now)
        in_ns d3 $IP route add blackhole 10.0.0.21/32; in_ns d3 $IP route add blackhole 10.0.0.22/32
        if wait_for 15 frr_paths_are 2; then
            echo "RESULT health.withdrawn_s=$(elapsed "$t")"
            say "FRR's RIB on the router: 2 paths after $(elapsed "$t") s; d3's own table 198 is empty:"
            in_ns d3 $IP route show table 198 | sed 's/^/#   /'
            vtysh_in d3 -c "show ip route json" | grep -q '"protocol":"table"' || echo "RESULT health.d3_rib_without_table_route=yes"
        else
            echo "RESULT health.withdrawn_s=never"
            sed 's/^/#   d3: /' /tmp/d3.log | tail -n 12; in_ns d3 $IP route; vtysh_in router -c "show ip route 10.95.0.1/32 json" | head -50
        fi
        t=$(now)
        in_ns d3 $IP route del blackhole 10.0.0.21/32; in_ns d3 $IP route del blackhole 10.0.0.22/32
        if wait_for 15 frr_paths_are 3; then echo "RESULT health.restored_s=$(elapsed "$t")"; else echo "RESULT health.restored_s=never"; fi
        say "real servers back for d3: the router has 3 paths again"
    fi
    for d in d1 d2 d3; do eval "base_$d=$(scheduled_on $d)"; done
    open_connections "$CONNECTIONS" "$name"
    sleep 4
    for d in d1 d2 d3; do eval "echo \"RESULT $name.before.$d=\$(( \$(scheduled_on $d) - base_$d ))\""; done
    alive=$(count_alive "$name")
    alive_before=$alive
    echo "RESULT $name.alive_before=$alive"
    if [ "$alive" != "$CONNECTIONS" ]; then for d in d1 d2 d3; do in_ns $d ipvsadm -Lnc | sed "s/^/#   $d: /"; done; fi
    say "$alive of $CONNECTIONS connections echo; killing d1 (link down, then SIGKILL of vigil, zebra, bgpd)"
    t=$(now)
    in_ns d1 $IP link set eth0 down
    kill -9 "$(cat /tmp/d1.vpid)" "$(cat /tmp/frr-d1/bgpd.pid)" "$(cat /tmp/frr-d1/zebra.pid)" 2>/dev/null
    if wait_for 15 two_paths; then
        converged=$(elapsed "$t")
        say "the router withdrew d1's path after $converged s (BGP hold time 3 s)"
        echo "RESULT $name.converged_s=$converged"
    else
        echo "RESULT $name.converged_s=never"
    fi
    sleep 4
    alive=$(count_alive "$name")
    say "$alive of the $alive_before established connections still echo after d1's loss"
    echo "RESULT $name.alive_after=$alive"
    echo "RESULT $name.lost=$((alive_before - alive))"
    for d in d2 d3; do eval "base_$d=$(scheduled_on $d)"; done
    open_connections 12 "$name-new"
    # Time for a SYN the emulated CPU was slow with to be retransmitted (1 s, then 2 s).
    sleep 6
    for d in d2 d3; do eval "new_$d=\$(( \$(scheduled_on $d) - base_$d ))"; done
    echo "RESULT $name.new.d2=$new_d2"
    echo "RESULT $name.new.d3=$new_d3"
    alive_new=$(count_alive "$name-new")
    echo "RESULT $name.new_alive=$alive_new"
    say "12 new connections: $alive_new echo; d2 scheduled $new_d2 of them, d3 $new_d3"
    # Tear the round down: clients, directors, FRR of the directors.
    for f in /tmp/conn-$name*.pid; do kill "$(cat "$f")" 2>/dev/null; done
    for d in d2 d3; do kill "$(cat /tmp/$d.vpid)" 2>/dev/null; done
    sleep 1
}

build
start_routing
round sync 1
rc=$?
# Fresh directors for the baseline: d1 back, FRR of d1 restarted, every IPVS table empty.
in_ns d1 $IP link set eth0 up
for d in d1 d2 d3; do in_ns $d ipvsadm -C; in_ns $d ipvsadm --stop-daemon master 2>/dev/null; in_ns $d ipvsadm --stop-daemon backup 2>/dev/null; done
for p in /tmp/frr-d1/*.pid; do kill "$(cat "$p")" 2>/dev/null; done
# What the killed d1 left in its announce table would be announced by its new zebra at once.
in_ns d1 $IP route flush table 198
sleep 0.5
director_frr 1
round baseline 0 || rc=1
exit $rc
