#!/bin/sh
# The ECMP lab, inside the kernel-lab guest (run by contrib/ecmp-lab/run.sh): three directors
# behind an FRR router doing BGP ECMP, two real servers, a client with long-lived connections.
#
#   client 10.1.0.2 ── router 10.1.0.1 / 10.0.0.1 (FRR bgpd, ECMP over 3 paths, 5-tuple hash)
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
# A process started in the background is started with `$IP netns exec` itself, never through
# in_ns: `in_ns ... &` forks a subshell whose $! is not the process, so a kill by that pid left
# the process running (the killed director of a round, and every round's directors, ran on).

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
    # ECMP on the 5-tuple read from each packet's headers, as a router hashing what it receives
    # does. Not policy 1 (L4): it reuses the hash the sending socket put on the packet (a veth
    # keeps it), and the client's TCP draws a new one on each retransmission timeout
    # (net.core.txrehash), so a flow moved to another director mid-connection and was reset
    # there: the early resets of the lab's earlier runs.
    in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
        net.ipv4.fib_multipath_hash_fields=0x0037
    for rs in rs1 rs2; do
        # DR real servers: the VIP on lo, never answering ARP for it, replies straight back.
        in_ns $rs $IP addr add 10.95.0.1/32 dev lo
        in_ns $rs sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        in_ns $rs $IP route add default via 10.0.0.1
        $IP netns exec $rs nc -ll -p 80 -e /bin/cat &
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
        $IP netns exec $d "$VIGIL" -n -l -f /tmp/$d.conf -p /tmp/$d.pid --control /tmp/$d.sock >/tmp/$d.log 2>&1 &
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
        ( while :; do echo "$2-$i"; sleep 0.5; done ) | $IP netns exec client nc 10.95.0.1 80 >/tmp/conn-$2-$i 2>/dev/null &
        echo $! >/tmp/conn-$2-$i.pid
    done
}
# Each connection: /tmp/conn-NAME-N holds its echo, /tmp/conn-NAME-N.pid its nc.
connections() { for f in /tmp/conn-$1-[0-9]*; do case $f in *.pid) ;; *) echo "${f#/tmp/conn-}";; esac; done; }
sizes() { for c in $(connections "$1"); do echo "$c $(wc -c </tmp/conn-$c)"; done; }
silent() { for c in $(connections "$1"); do [ -s "/tmp/conn-$c" ] || printf '%s ' "$c"; done; }
all_echoed() { [ -z "$(silent "$1")" ]; }
nc_runs() { kill -0 "$(cat "/tmp/conn-$1.pid")" 2>/dev/null; }
# The connections whose nc still runs and whose echo grew since the sizes in file $2.
growing() { sizes "$1" | awk 'NR == FNR { size[$1] = $2; next } $2 > size[$1] { print $1 }' "$2" - |
    while read -r c; do nc_runs "$c" && echo "$c"; done; }
# Connections alive: their nc still runs (a reset ends it) and their echo grew within 3 s, or,
# for one a lost segment holds back (TCP's retransmission timer backs off to seconds on the
# emulated CPU), within 10 s. Prints the count; the stalled ones go to /tmp/stalled-NAME.
count_alive() {
    sizes "$1" >/tmp/sizes-$1; sleep 3; waited=3
    total=$(connections "$1" | wc -l)
    while growing "$1" /tmp/sizes-$1 >/tmp/growing-$1; [ "$(wc -l </tmp/growing-$1)" -lt "$total" ] && [ $waited -lt 10 ]; do
        sleep 1; waited=$((waited + 1))
    done
    for c in $(connections "$1" | grep -vxF -f /tmp/growing-$1); do
        nc_runs "$c" && how="nc runs" || how="nc gone"
        printf '%s (%s bytes, %s) ' "$c" "$(wc -c </tmp/conn-$c)" "$how"
    done >/tmp/stalled-$1
    wc -l </tmp/growing-$1
}
# The router's BGP sessions (an Up/Down younger than the round is a session that flapped).
bgp_sessions() { vtysh_in router -c "show bgp summary" | awk '$1 ~ /^10\.0\.0\.1[123]$/ { printf "%s up %s; ", $1, $9 }'; }
# TCP resets a namespace's own stack has sent (Tcp OutRsts).
out_rsts() { in_ns "$1" awk '$1 == "Tcp:" { if (n) print $15; n = 1 }' /proc/net/snmp; }
# The round's capture: the router's fabric side, with link-layer addresses (who sent a packet);
# as root (writing and reading): the guest has no user tcpdump to drop to, and without -Z root
# tcpdump exits at once.
capture_start() { $IP netns exec router /usr/bin/tcpdump -Z root -i eth0 -e -nn -U -w /tmp/cap-$1.pcap tcp port 80 and host 10.1.0.2 2>/dev/null & cap=$!; }
read_capture() { cap_file=$1; shift; /usr/bin/tcpdump -Z root -e -nn -tt -r "$cap_file" "$@" 2>/dev/null; }
# The client ports of the flows in capture $1 that match filter $2, and how often each was seen.
client_ports() { read_capture "$1" "$2" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^10\.1\.0\.2\.[0-9]+:?$/) { sub(":", "", $i); split($i, a, "."); n[a[5]]++ } } END { for (p in n) print p, n[p] }'; }
# Why connections of round $1 fell short: the resets each namespace sent since the round began,
# which addresses are whose, every reset the router forwarded to the client or from it with the
# packets of its flow before it, and the flows whose SYN the client had to send again.
explain_shortfall() {
    for ns in d1 d2 d3 rs1 rs2 client; do
        printf '%s: %s resets sent, MAC %s; ' $ns "$(( $(out_rsts $ns) - $(eval echo \$rsts_$ns) ))" "$(in_ns $ns cat /sys/class/net/eth0/address 2>/dev/null)"
    done | sed 's/^/# /'; echo
    read_capture /tmp/cap-$1.pcap 'tcp[tcpflags] & tcp-rst != 0' | head -12 | sed 's/^/#   reset: /'
    for port in $(client_ports /tmp/cap-$1.pcap 'tcp[tcpflags] & tcp-rst != 0' | awk '{ print $1 }' | head -3); do
        read_capture /tmp/cap-$1.pcap "port $port" | tail -n 12 | sed "s/^/#   flow $port: /"
    done
    for port in $(client_ports /tmp/cap-$1.pcap 'tcp[tcpflags] == tcp-syn' | awk '$2 > 1 { print $1 }' | head -3); do
        read_capture /tmp/cap-$1.pcap "port $port" | head -12 | sed "s/^/#   SYN again, $port: /"
    done
}
# What the lab prints when connections fall short: the IPVS entries of directors $@, the route.
show_entries() { for d in "$@"; do in_ns $d ipvsadm -Lnc | sed "s/^/#   $d: /"; done; }
show_route() { in_ns router $IP route show 10.95.0.1 | sed 's/^/#   router: /'; }
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
    for ns in d1 d2 d3 rs1 rs2 client; do eval "rsts_$ns=$(out_rsts $ns)"; done
    capture_start "$name"; sleep 1
    open_connections "$CONNECTIONS" "$name"
    sleep 4
    for d in d1 d2 d3; do eval "echo \"RESULT $name.before.$d=\$(( \$(scheduled_on $d) - base_$d ))\""; done
    alive=$(count_alive "$name")
    alive_before=$alive
    echo "RESULT $name.alive_before=$alive"
    [ "$alive" = "$CONNECTIONS" ] || say "connections that stopped echoing: $(cat /tmp/stalled-$name)"
    say "the router's BGP sessions: $(bgp_sessions)"
    [ "$alive" = "$CONNECTIONS" ] || { show_entries d1 d2 d3; explain_shortfall "$name"; }
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
    # Until every new connection has echoed once: a SYN the emulated CPU was slow with is
    # retransmitted after 1 s, then 2 s, 4 s (a loaded CI host has needed more than 6 s).
    t=$(now)
    if wait_for 20 all_echoed "$name-new"; then
        echo "RESULT $name.new_echoed_s=$(elapsed "$t")"
    else
        echo "RESULT $name.new_echoed_s=never"
        say "new connections that never echoed: $(silent "$name-new")"
        show_entries d2 d3; show_route
    fi
    alive_new=$(count_alive "$name-new")
    echo "RESULT $name.new_alive=$alive_new"
    say "the router's BGP sessions: $(bgp_sessions)"
    if [ "$alive_new" != 12 ]; then
        say "new connections that stopped echoing: $(cat /tmp/stalled-$name-new)"
        explain_shortfall "$name"
        show_route
        for d in d2 d3; do tail -n 8 /tmp/$d.log | sed "s/^/#   $d log: /"; done
    fi
    # The Conns counters are read after count_alive's 3 s: IPVS folds its per-CPU counters into
    # them only every 2 s (the estimator).
    for d in d2 d3; do eval "new_$d=\$(( \$(scheduled_on $d) - base_$d ))"; done
    echo "RESULT $name.new.d2=$new_d2"
    echo "RESULT $name.new.d3=$new_d3"
    say "12 new connections: $alive_new echo; d2 scheduled $new_d2 of them, d3 $new_d3"
    # The checkers' verdicts of the round (a real server removed on one director stalls the
    # connections that director sends it: IPVS drops their packets while the server is out).
    for d in d1 d2 d3; do grep -E "is DOWN|is UP" /tmp/$d.log | sed "s/^/#   $d: /"; done
    # Tear the round down: clients, capture, directors (SIGTERM: each removes what it added).
    for f in /tmp/conn-$name*.pid; do kill "$(cat "$f")" 2>/dev/null; done
    kill $cap 2>/dev/null
    for d in d2 d3; do kill "$(cat /tmp/$d.vpid)" 2>/dev/null; done
    wait_for 10 directors_gone || say "a director did not stop within 10 s of SIGTERM"
}
# Every director has exited (a zombie, not yet reaped by this shell, has too).
directors_gone() { for d in d1 d2 d3; do case $(awk '{ print $3 }' "/proc/$(cat /tmp/$d.vpid)/stat" 2>/dev/null) in ""|Z) ;; *) return 1;; esac; done; }

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
