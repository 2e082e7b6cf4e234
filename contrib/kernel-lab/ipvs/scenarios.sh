#!/bin/sh
# Vigil's IPVS scenarios, run inside the kernel-lab guest (busybox sh, IPVS loaded, lo up) by
# contrib/kernel-lab/ipvs-suite.sh. Every case prints "ok N - what" or "not ok N - what: why";
# the script exits 1 if any case failed. `ipvsadm` is the independent reader of the kernel's
# table throughout. Timings use /proc/uptime (10 ms) on the guest's clock, the one Vigil's
# timers run on.
set -u
. /work/env            # VIGIL=<path of the vigil binary>
cd /work

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check "description" command...
    what=$1; shift
    if "$@"; then ok "$what"; else notok "$what"; return 1; fi
}
now() { awk '{ print $1 }' /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
table() { ipvsadm -Ln "$@" 2>/dev/null; }
# The destination lines of one service, "address:port forward weight".
dests() { table "$@" | awk '/->/ && !/RemoteAddress/ { print $2, $3, $4 }'; }
has_dest() { dests -t "$1" | grep -q "^$2 "; }
dest_weight() { dests -t "$1" | awk -v d="$2" '$1 == d { print $3 }'; }
wait_for() { # wait_for SECONDS command...: polls every 0.1 s
    limit=$1; shift
    start=$(now)
    while ! "$@"; do
        le "$(elapsed "$start")" "$limit" || return 1
        sleep 0.1
    done
}
not() { ! "$@"; }

VPID=
start_vigil() { # start_vigil CONF LOG [extra args]
    conf=$1 log=$2; shift 2
    "$VIGIL" -n -l -f "$conf" -p /tmp/vigil.pid --control /tmp/vigil.sock --metrics 127.0.0.1:9165 "$@" >"$log" 2>&1 &
    VPID=$!
    if ! wait_for 20 grep -q "IPVS: table programmed" "$log"; then
        echo "# vigil did not program the table; its log:"; sed 's/^/#   /' "$log"
        return 1
    fi
}
stop_vigil() { # stop_vigil [SIGNAL]
    [ -n "$VPID" ] || return 0
    kill "-${1:-TERM}" "$VPID" 2>/dev/null
    wait "$VPID" 2>/dev/null
    VPID=
}
show_log() { sed 's/^/#   /' "$1"; }

# A foreign service, created before Vigil ever runs: nothing but lvs_flush may touch it.
ipvsadm -A -t 10.99.9.9:443 -s wrr
ipvsadm -a -t 10.99.9.9:443 -r 10.98.0.1:443 -m -w 7
foreign=$(table -t 10.99.9.9:443)
foreign_intact() { [ "$(table -t 10.99.9.9:443)" = "$foreign" ]; }

echo "# phase kinds: services of every kind"
start_vigil kinds.conf /tmp/kinds.log || { notok "vigil installs kinds.conf"; exit 1; }
table >/tmp/kinds.table
sed 's/^/#   /' /tmp/kinds.table
line() { grep -q "$1" /tmp/kinds.table; }
check "TCP NAT service, rr, persistent 300 with /24 granularity" line '^TCP  10.50.0.1:80 rr persistent 300 mask 255.255.255.0$'
check "NAT destinations keep weights and ports" sh -c '
    dests() { ipvsadm -Ln -t 10.50.0.1:80 | awk "/->/ && !/RemoteAddress/ { print \$2, \$3, \$4 }"; }
    dests | grep -qx "10.60.0.11:80 Masq 3" && dests | grep -qx "10.60.0.12:8080 Masq 1"'
check "thresholds reach the kernel (uthreshold 100, lthreshold 10)" sh -c \
    'ipvsadm -Ln --thresholds -t 10.50.0.1:80 | grep "10.60.0.12:8080" | grep -q "10.60.0.12:8080 *100 *10 "' || ipvsadm -Ln --thresholds -t 10.50.0.1:80 | sed 's/^/#   /'
check "UDP DR service, wlc, one-packet scheduling" line '^UDP  10.50.0.2:53 wlc ops$'
check "DR destination with the VS port and weight 5" sh -c 'ipvsadm -Ln -u 10.50.0.2:53 | grep -q "10.60.0.21:53 *Route *5 "'
check "SCTP TUN service, lc" line '^SCTP 10.50.0.3:9000 lc$'
check "TUN destination" sh -c 'ipvsadm -Ln --sctp-service 10.50.0.3:9000 | grep -q "10.60.0.31:9000 *Tunnel *1 "'
check "fwmark 7 service, sh with sh-fallback and sh-port" line '^FWM  7 sh (sh-fallback,sh-port)$'
check "fwmark DR destination, port 0, weight 2" sh -c 'ipvsadm -Ln -f 7 | grep -q "10.60.0.41:0 *Route *2 "'
check "IPv6 TCP service, wrr, persistent 60 with /64 granularity" line '^TCP  \[fd00:50::1\]:443 wrr persistent 60 mask 64$'
check "IPv6 NAT destination on another port, weight 4" sh -c 'ipvsadm -Ln -t [fd00:50::1]:443 | grep -q "\[fd00:60::11\]:8443 *Masq *4 "'
check "virtual_server_group 10.52.0.1-3 gives three services sharing the real server" sh -c '
    for i in 1 2 3; do ipvsadm -Ln -t 10.52.0.$i:80 | grep -q "10.60.0.51:80 *Masq *1 " || exit 1; done'
i=0
for s in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf; do
    i=$((i + 1))
    if grep -qx "$s" /etc/kernel-lab/schedulers; then
        check "scheduler $s" line "^TCP  10.51.0.$i:80 $s *\$"
    else
        check "scheduler $s absent from this kernel is reported" grep -q "$s" /tmp/kinds.log
    fi
done
check "foreign service untouched by the start" foreign_intact
check "no IPVS error at start" not grep -qi "error" /tmp/kinds.log

echo "# phase restart: crash, -I, restart"
stop_vigil KILL
check "after SIGKILL the table stays" line '^TCP  10.50.0.1:80 rr persistent 300'
before=$(table)
start_vigil kinds.conf /tmp/kinds2.log
check "a restart over a left-behind table adopts it without errors" not grep -qi "error" /tmp/kinds2.log
check "a restart leaves the table as it was" sh -c "[ \"\$(ipvsadm -Ln 2>/dev/null)\" = '$before' ]"
check "a restart sends nothing when nothing differs" grep -q "table programmed: 21 services, 22 destinations, 0 operations" /tmp/kinds2.log || grep "table programmed\|IPVS" /tmp/kinds2.log | sed "s/^/#   /"
stop_vigil TERM
check "SIGTERM removes every service Vigil added" sh -c '[ "$(ipvsadm -Ln | grep -c "^[TUSF]")" = 1 ]'
check "SIGTERM leaves the foreign service and its destination" foreign_intact
show_log /tmp/kinds2.log | tail -n 3
start_vigil kinds.conf /tmp/kinds3.log -I
stop_vigil TERM
check "-I leaves the services in place on stop" line '^TCP  10.50.0.1:80 rr persistent 300'
check "-I leaves the table complete" sh -c '[ "$(ipvsadm -Ln | grep -c "^[TUSF]")" = 22 ]'
start_vigil kinds.conf /tmp/kinds4.log
stop_vigil TERM
check "the next run without -I removes them" sh -c '[ "$(ipvsadm -Ln | grep -c "^[TUSF]")" = 1 ]'
check "foreign service still intact after four runs" foreign_intact

echo "# phase health: TCP_CHECK against listeners on rs0"
ip link add rs0 type dummy
ip link set rs0 up
ip addr add 10.70.0.1/24 dev rs0
for a in 11 12 13 21 22 31 32 99; do ip addr add 10.70.0.$a/32 dev rs0; done
mkdir -p /tmp/www
LISTENERS=""
listen() { # listen LAST_OCTET: busybox httpd on 10.70.0.N:80, its pid in L_N
    httpd -f -p "10.70.0.$1:80" -h /tmp/www &
    eval "L_$1=$!"
    LISTENERS="$LISTENERS $!"
}
unlisten() { eval "kill \$L_$1; wait \$L_$1 2>/dev/null"; }
listen 11; listen 21; listen 22; listen 31
sleep 0.3
: >/tmp/marks
t0=$(now)
start_vigil health.conf /tmp/health.log || { show_log /tmp/health.log; exit 1; }
# Bootstrap 1 s + warmup up to delay_loop (1 s) + one check.
sleep 3
echo "# table after the first checks:"; table | sed 's/^/#   /'
check "a real server with a listener is in the pool" has_dest 10.80.0.1:80 10.70.0.11:80
check "a real server with no listener is left out" not has_dest 10.80.0.1:80 10.70.0.12:80
check "inhibit_on_failure keeps a failed server with weight 0" sh -c '[ "$(ipvsadm -Ln -t 10.80.0.1:80 | awk "\$2 == \"10.70.0.13:80\" { print \$4 }")" = 0 ]'
check "alpha: a checked server with a listener is added" has_dest 10.80.0.3:80 10.70.0.31:80
check "alpha: a server whose check never passed was never added" sh -c '! grep -q "Adding service \[10.70.0.32\]" /tmp/health.log'
check "quorum 2 met: both real servers, no sorry server" sh -c '
    d=$(ipvsadm -Ln -t 10.80.0.2:80); echo "$d" | grep -q 10.70.0.21:80 && echo "$d" | grep -q 10.70.0.22:80 && ! echo "$d" | grep -q 10.70.0.99:80'
check "quorum_up ran at start" grep -qx quorum-up /tmp/marks
check "two checkers, one failing: the real server is out" not has_dest 10.80.0.4:80 10.70.0.21:80
check "connect_ip: a server is checked at another address" has_dest 10.80.0.4:80 10.70.0.41:80
check "sorry_server_inhibit: the unused sorry server waits at weight 0" sh -c '[ "$(ipvsadm -Ln -t 10.80.0.5:80 | awk "\$2 == \"10.70.0.99:80\" { print \$4 }")" = 0 ]'

# Bound for adding a server: a down checker tries once per delay_loop, and the connect itself
# is bounded by connect_timeout x (retry + 1); slack 1.5 s for TCG.
bound_up=$(awk 'BEGIN { print 1 + 1 * 2 + 1.5 }')
listen 12
t=$(now)
if wait_for "$bound_up" has_dest 10.80.0.1:80 10.70.0.12:80; then
    ok "a server that starts listening is added after $(elapsed "$t") s (bound $bound_up s)"
else
    notok "a server that starts listening is added within $bound_up s"; show_log /tmp/health.log | tail -n 20
fi

# A server that vanishes without a word (its address gone, packets to it dropped by rs0):
# every connect times out, so removal takes the full delay_loop + connect_timeout x (retry + 1)
# + delay_before_retry x retry = 1 + 2 + 1 = 4 s at most; slack 1.5 s.
bound_down=$(awk 'BEGIN { print 1 + 1 * 2 + 1 * 1 + 1.5 }')
ip addr del 10.70.0.11/32 dev rs0
t=$(now)
if wait_for "$bound_down" not has_dest 10.80.0.1:80 10.70.0.11:80; then
    ok "a server that stops answering is removed after $(elapsed "$t") s (bound $bound_down s)"
else
    notok "a server that stops answering is removed within $bound_down s"; show_log /tmp/health.log | tail -n 20
fi
check "notify_down ran for it" wait_for 2 grep -qx down-11 /tmp/marks
ip addr add 10.70.0.11/32 dev rs0
t=$(now)
if wait_for "$bound_up" has_dest 10.80.0.1:80 10.70.0.11:80; then
    ok "it is back after $(elapsed "$t") s once reachable again (bound $bound_up s)"
else
    notok "it is back within $bound_up s once reachable again"
fi
check "notify_up ran for it" wait_for 2 grep -qx up-11 /tmp/marks
check "its weight is the configured 2" sh -c '[ "$(ipvsadm -Ln -t 10.80.0.1:80 | awk "\$2 == \"10.70.0.11:80\" { print \$4 }")" = 2 ]'

# Quorum: 2 servers of weight 1, quorum 2. One refuses connections: quorum lost, the sorry
# server takes over alone. A refused connect fails at once, so the bound is delay_loop x
# (retry + 1) + delay_before_retry x retry + slack.
unlisten 22
t=$(now)
if wait_for 4.5 has_dest 10.80.0.2:80 10.70.0.99:80; then
    ok "quorum loss brings in the sorry server after $(elapsed "$t") s"
else
    notok "quorum loss brings in the sorry server"; show_log /tmp/health.log | tail -n 20
fi
check "while the sorry server serves, the real servers are out" sh -c '
    d=$(ipvsadm -Ln -t 10.80.0.2:80); ! echo "$d" | grep -q 10.70.0.21:80 && ! echo "$d" | grep -q 10.70.0.22:80'
check "quorum_down ran" wait_for 2 grep -qx quorum-down /tmp/marks
check "the log says so in keepalived's words" grep -q "Lost quorum 2-0=2 > 1 for VS \[10.80.0.2\]:tcp:80" /tmp/health.log
listen 22
if wait_for "$bound_up" not has_dest 10.80.0.2:80 10.70.0.99:80; then
    ok "quorum regained: sorry server removed after $(elapsed "$t") s"
else
    notok "quorum regained: sorry server removed"
fi
check "quorum regained: both real servers back" sh -c '
    d=$(ipvsadm -Ln -t 10.80.0.2:80); echo "$d" | grep -q 10.70.0.21:80 && echo "$d" | grep -q 10.70.0.22:80'
check "quorum_up ran again" wait_for 2 sh -c '[ "$(grep -c quorum-up /tmp/marks)" = 2 ]'
check "no IPVS error while checking" not grep -qi "error" /tmp/health.log || grep -i error /tmp/health.log | sed "s/^/#   /"
stop_vigil TERM
check "SIGTERM removes the checked services" sh -c '! ipvsadm -Ln | grep -q "10.80.0."'
check "omega: notify_down ran at stop for the server being removed" grep -qx omega-down-31 /tmp/marks
check "omega: quorum_down ran at stop" grep -qx omega-quorum-down /tmp/marks
check "without omega no down script runs at stop" sh -c '[ "$(grep -c "^down-11$" /tmp/marks)" = 1 ]'
check "foreign service intact after the health phase" foreign_intact
for p in $LISTENERS; do kill "$p" 2>/dev/null; done

echo "# phase reload: SIGHUP keeps what did not change, to the counter"
cp reload.conf /tmp/reload.conf
ip addr add 10.85.0.1/32 dev rs0
ip addr add 10.85.0.2/32 dev rs0
listen 11
httpd -f -p 10.85.0.1:80 -h /tmp/www &
VIPD=$!
sleep 0.3
start_vigil /tmp/reload.conf /tmp/reload.log || show_log /tmp/reload.log
sleep 2.5
connect() { printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 10.85.0.1 80 >/dev/null; }
connect; connect; connect
# The kernel folds its per-CPU counters into what ipvsadm reads every 2 s.
sleep 4
conns_are() { [ "$(ipvsadm -Ln --stats -t 10.85.0.1:80 | awk '$1 == "TCP" { print $3 }')" = "$1" ]; }
template() { ipvsadm -Lnc | grep -q "10.85.0.1:0 *10.85.0.1:80 *10.70.0.11:80"; }
check "three connections counted before the reload" conns_are 3 || ipvsadm -Ln --stats | sed 's/^/#   /'
check "a persistence template exists before the reload" template
hangup() { # hangup N: SIGHUP, then wait for the Nth reload line in the log
    kill -HUP "$VPID"
    wait_for 5 sh -c "[ \$(grep -c 'Reload of' /tmp/reload.log) -ge $1 ]"
}
# 1: a new virtual server.
{
    cat reload.conf
    cat <<'EOT'
virtual_server 10.85.0.2 80 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 10.70.0.12 80 {
    }
}
EOT
} >/tmp/reload.conf
hangup 1
check "a reload adding a service adds it" has_dest 10.85.0.2:80 10.70.0.12:80
check "it sends exactly the service and its destination" grep -q "2 netlink operations (1 service added, 1 destination added)" /tmp/reload.log || grep "Reload of" /tmp/reload.log | sed 's/^/#   /'
sleep 2.5
check "the unchanged service kept its connection counter" conns_are 3 || ipvsadm -Ln --stats | sed 's/^/#   /'
check "the unchanged service kept its persistence template" template || ipvsadm -Lnc | sed 's/^/#   /'
# 2: a weight change.
sed 's/weight 1$/weight 3/' /tmp/reload.conf >/tmp/reload.next && mv /tmp/reload.next /tmp/reload.conf
hangup 2
check "a weight change is one edit, not a delete and an add" grep -q "1 netlink operation (1 destination edited)" /tmp/reload.log || grep "Reload of" /tmp/reload.log | sed 's/^/#   /'
check "the kernel has the new weight" sh -c '[ "$(ipvsadm -Ln -t 10.85.0.1:80 | awk "\$2 == \"10.70.0.11:80\" { print \$4 }")" = 3 ]'
check "the persistence template survived the edit" template
# 3: the same file again.
hangup 3
check "an unchanged file sends no netlink request" grep -q "nothing changed.*0 netlink operations" /tmp/reload.log
# 4: a broken file.
echo "virtual_server 10.85.0.9 80 {" >>/tmp/reload.conf
hangup 4
check "a broken file is refused with its location" grep -q "reload.conf:.*error" /tmp/reload.log
both_services() { has_dest 10.85.0.1:80 10.70.0.11:80 && has_dest 10.85.0.2:80 10.70.0.12:80; }
check "a refused reload leaves the table as it was" both_services
connect
sleep 2.5
check "traffic still flows to the kept service" conns_are 4
check "no IPVS error across the reloads" not grep -qi "IPVS.*error\|error.*IPVS" /tmp/reload.log || grep -i error /tmp/reload.log | sed 's/^/#   /'
grep "Reload of" /tmp/reload.log | sed 's/^/#   /'

echo "# phase halfreload: SIGKILL while a reload is being applied, then a restart"
# 800 more virtual servers with two real servers each (2,400 netlink operations): the daemon
# is killed once some of them are in, then started again on the same file.
sed -i '$d' /tmp/reload.conf
gen_services() { # gen_services COUNT: virtual servers 10.86.x.y:80, two real servers each, no checker
    i=0
    while [ "$i" -lt "$1" ]; do
        printf 'virtual_server 10.86.%d.%d 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 10.87.0.1 80 {\n    }\n    real_server 10.87.0.2 80 {\n    }\n}\n' $((i / 250)) $((i % 250 + 1))
        i=$((i + 1))
    done
}
new_entries() { ipvsadm -Ln 2>/dev/null | grep -c -E '^TCP  10\.86\.|-> 10\.87\.0\.[12]:80'; }
gen_services 800 >>/tmp/reload.conf
kill -HUP "$VPID"
wait_for 60 sh -c "[ \$(ipvsadm -Ln 2>/dev/null | grep -c -E '^TCP  10\.86\.|-> 10\.87\.0\.[12]:80') -ge 60 ]"
kill -KILL "$VPID"; wait "$VPID" 2>/dev/null; VPID=
mid=$(new_entries)
check "SIGKILL came while the reload was half applied ($mid of 2400 entries in)" [ "$mid" -gt 0 -a "$mid" -lt 2400 ]
check "the kill left the kept service and its counter" conns_are 4
start_vigil /tmp/reload.conf /tmp/half.log || show_log /tmp/half.log
check "the restart completes the table (800 services, 1,600 destinations)" [ "$(new_entries)" = 2400 ]
check "the restart sends only what was missing ($((2400 - mid)) operations)" grep -q "table programmed: 802 services, 1602 destinations, $((2400 - mid)) operations" /tmp/half.log || grep "table programmed" /tmp/half.log | sed 's/^/#   /'
sleep 2.5
check "no flush: the kept service kept its connection counter" conns_are 4 || ipvsadm -Ln --stats -t 10.85.0.1:80 | sed 's/^/#   /'
check "no flush: and its persistence template" template
check "the foreign service is intact after the half-applied reload" foreign_intact
check "no IPVS error in the restart" not grep -qi "IPVS.*error\|error.*IPVS" /tmp/half.log
stop_vigil TERM
check "SIGTERM then removes them all" [ "$(new_entries)" = 0 ]
kill "$VIPD" 2>/dev/null
unlisten 11

echo "# phase status: vigil status and /metrics say what ipvsadm -Ln --stats says"
ip addr add 10.70.0.19/32 dev rs0
ip addr add 10.80.9.1/32 dev rs0
httpd -f -p 8080 -h /tmp/www &
STATUSD=$!
sleep 0.3
start_vigil status.conf /tmp/status.log || show_log /tmp/status.log
sleep 2.5
for i in 1 2 3 4 5 6 7; do printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 10.80.9.1 8080 >/dev/null; done
# The kernel folds its per-CPU counters into what ipvsadm reads every 2 s.
sleep 4.5
ipvsadm -Ln --stats --exact -t 10.80.9.1:8080 >/tmp/stats.txt
sed 's/^/#   /' /tmp/stats.txt
"$VIGIL" status --control /tmp/vigil.sock >/tmp/status.txt; status_rc=$?
"$VIGIL" status --json --control /tmp/vigil.sock >/tmp/status.json
printf "GET /metrics HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 9165 >/tmp/metrics.txt
# ipvsadm's columns: Conns InPkts OutPkts InBytes OutBytes, for the service and the destination.
svc=$(awk '$1 == "TCP" { print $3, $4, $5, $6, $7 }' /tmp/stats.txt)
dst=$(awk '$2 == "10.70.0.11:8080" { print $3, $4, $5, $6, $7 }' /tmp/stats.txt)
metric() { awk -v s="$1" 'index($0, s " ") == 1 { v = $NF; sub(/\.0$/, "", v); print v }' /tmp/metrics.txt; }
series() { # series PREFIX LABELS: the five gen2brain values in ipvsadm's column order
    v=""
    for f in conn in_packets out_packets in_bytes out_bytes; do v="$v${v:+ }$(metric "$1$f{$2}")"; done
    echo "$v"
}
# The first "traffic" object in the JSON is the service's, the one after the real server's name its.
json_traffic() { awk -v after="$1" '
    index($0, after) { armed = 1 }
    armed && /"traffic": \{/ { t = 1; next }
    t && /"connections"/ { c = $2 } t && /"in_packets"/ { ip = $2 } t && /"out_packets"/ { op = $2 }
    t && /"in_bytes"/ { ib = $2 } t && /"out_bytes"/ { ob = $2; gsub(/,/, "", c); gsub(/,/, "", ip); gsub(/,/, "", op); gsub(/,/, "", ib); gsub(/,/, "", ob); print c, ip, op, ib, ob; exit }
' /tmp/status.json; }
vs='virtual_server="[10.80.9.1]:tcp:8080"'
kernel_weight=$(ipvsadm -Ln -t 10.80.9.1:8080 | awk '$2 == "10.70.0.11:8080" { print $4 }')
check "seven connections went through the service" [ "${svc%% *}" = 7 ]
check "keepalived_lvs_vip_* are ipvsadm's service counters ($svc)" \
    [ "$(series keepalived_lvs_vip_ 'addr="10.80.9.1:8080",proto="6"')" = "$svc" ]
check "keepalived_lvs_rs_* are ipvsadm's destination counters ($dst)" \
    [ "$(series keepalived_lvs_rs_ 'vip="10.80.9.1:8080",addr="10.70.0.11:8080",proto="6"')" = "$dst" ]
check "status --json has the service's counters" [ "$(json_traffic '"virtual_servers"')" = "$svc" ]
check "status --json has the real server's counters" [ "$(json_traffic '"[10.70.0.11]:tcp:8080"')" = "$dst" ]
check "vigil status answers (exit 0)" [ "$status_rc" = 0 ]
check "vigil status shows the listening real server UP with its weight" grep -q "\[10.70.0.11\]:tcp:8080 *UP *weight 2 " /tmp/status.txt
check "vigil status shows the silent one DOWN and not in IPVS" grep -q "\[10.70.0.19\]:tcp:8080 *DOWN *weight 1 (not in IPVS)" /tmp/status.txt
check "vigil status counts 1/2 real servers up" grep -q "rr, quorum up, 1/2 real servers up" /tmp/status.txt
check "vigil_real_server_up is 1 for the listening one, 0 for the silent one" \
    [ "$(metric "vigil_real_server_up{$vs,real_server=\"10.70.0.11:8080\"}")$(metric "vigil_real_server_up{$vs,real_server=\"10.70.0.19:8080\"}")" = 10 ]
check "vigil_real_server_weight is the kernel's ($kernel_weight)" \
    [ "$(metric "vigil_real_server_weight{$vs,real_server=\"10.70.0.11:8080\"}")" = "$kernel_weight" ]
check "TCP_CHECK durations are in the histogram" grep -q 'vigil_health_check_duration_seconds_count{kind="TCP_CHECK"} [1-9]' /tmp/metrics.txt
if ! grep -q "^keepalived_lvs_vip_conn" /tmp/metrics.txt; then sed 's/^/#   /' /tmp/metrics.txt | head -40; show_log /tmp/status.log; fi
stop_vigil TERM
kill "$STATUSD" 2>/dev/null
ip addr del 10.80.9.1/32 dev rs0

echo "# phase http: HTTP_GET with a digest and status codes against busybox httpd"
mkdir -p /tmp/www-http
printf 'vigil kernel lab page\n' >/tmp/www-http/page.html
HTTPDS=""
for a in 51 52 53 54; do
    ip addr add 10.70.0.$a/32 dev rs0
    httpd -f -p "10.70.0.$a:80" -h /tmp/www-http &
    HTTPDS="$HTTPDS $!"
done
sleep 0.3
start_vigil http.conf /tmp/http.log || { show_log /tmp/http.log; exit 1; }
# Real servers without alpha start in the pool; the first fetches come after the bootstrap
# 1 s + warmup up to delay_loop 1 s, and take the 404 out (slack for TCG).
wait_for 6 not has_dest 10.95.0.1:80 10.70.0.52:80
check "HTTP_GET: a matching digest keeps the server in" has_dest 10.95.0.1:80 10.70.0.51:80
check "HTTP_GET: a 404 is down" not has_dest 10.95.0.1:80 10.70.0.52:80
check "HTTP_GET: status_code 404 makes a 404 up" has_dest 10.95.0.1:80 10.70.0.53:80
check "HTTP_GET: a page matching the url's regex keeps the server in" has_dest 10.95.0.1:80 10.70.0.54:80
printf 'a changed page\n' >/tmp/www-http/page.html
# Down after 1 + retry failures delay_before_retry apart: delay_loop + 1 s + slack.
t=$(now)
if wait_for 6 not has_dest 10.95.0.1:80 10.70.0.51:80; then
    ok "HTTP_GET: a changed page takes the server out after $(elapsed "$t") s"
else
    notok "HTTP_GET: a changed page takes the server out"; show_log /tmp/http.log | tail -n 20
fi
check "HTTP_GET: keepalived's line names the digest" grep -q "HTTP_CHECK on service \[10.70.0.51\]:tcp:80 failed after 1 retries. (MD5 digest error to" /tmp/http.log
wait_for 3 not has_dest 10.95.0.1:80 10.70.0.54:80
check "HTTP_GET: a page that no longer matches the regex takes the server out" not has_dest 10.95.0.1:80 10.70.0.54:80
check "HTTP_GET: keepalived's words for it" grep -q "HTTP_CHECK on service \[10.70.0.54\]:tcp:80 failed after 1 retries. (Regex match failed" /tmp/http.log
printf 'vigil kernel lab page\n' >/tmp/www-http/page.html
# Back after the failed URL passes and one full pass: two delay_loops + slack.
t=$(now)
if wait_for 8 has_dest 10.95.0.1:80 10.70.0.51:80; then
    ok "HTTP_GET: the restored page brings the server back after $(elapsed "$t") s"
else
    notok "HTTP_GET: the restored page brings the server back"; show_log /tmp/http.log | tail -n 20
fi
wait_for 4 has_dest 10.95.0.1:80 10.70.0.54:80
check "HTTP_GET: the restored page matches the regex again: back in" has_dest 10.95.0.1:80 10.70.0.54:80
check "HTTP_GET: keepalived's success line" grep -q "Remote Web server \[10.70.0.51\]:tcp:80 succeed on service." /tmp/http.log
"$VIGIL" status --control /tmp/vigil.sock >/tmp/http-status.txt 2>&1 || true
check "vigil status shows HTTP_GET's last result" grep -q "url(/page.html)" /tmp/http-status.txt
stop_vigil TERM
for p in $HTTPDS; do kill "$p" 2>/dev/null; done

echo "# phase misc: MISC_CHECK scripts, misc_dynamic weights and misc_timeout"
printf '#!/bin/sh\nexit "$(cat /work/misc-exit)"\n' >/work/misc-weight.sh
printf '#!/bin/sh\nexec sleep 1000\n' >/work/misc-hang.sh
chmod 755 /work/misc-weight.sh /work/misc-hang.sh
echo 0 >/work/misc-exit
dest_weight_of() { ipvsadm -Ln -t "$1" 2>/dev/null | awk -v d="$2" '$2 == d { print $4 }'; }
weight_is() { [ "$(dest_weight_of "$1" "$2")" = "$3" ]; }
count_cmd() { for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null; echo; done | grep -c "^$1"; }
start_vigil misc.conf /tmp/misc.log || { show_log /tmp/misc.log; exit 1; }
wait_for 6 not has_dest 10.96.0.1:80 10.70.0.62:80
check "MISC_CHECK: exit 0 keeps the server in at its weight" weight_is 10.96.0.1:80 10.70.0.61:80 10
check "MISC_CHECK: a script that never ends takes its server out" not has_dest 10.96.0.1:80 10.70.0.62:80
check "MISC_CHECK: keepalived's line for the timeout" grep -q "by \[/work/misc-hang.sh\] timed out" /tmp/misc.log
# It runs again every delay_loop, so one run may be in flight; the killed ones are gone.
at_most_one_hung() { [ "$(count_cmd 'sleep 1000')" -le 1 ]; }
check "MISC_CHECK: each hung run is killed at misc_timeout (at most one alive)" at_most_one_hung
echo 7 >/work/misc-exit
if wait_for 5 weight_is 10.96.0.1:80 10.70.0.61:80 5; then
    ok "MISC_CHECK misc_dynamic: exit 7 sets weight 5"
else
    notok "MISC_CHECK misc_dynamic: exit 7 sets weight 5 (weight $(dest_weight_of 10.96.0.1:80 10.70.0.61:80))"; show_log /tmp/misc.log | tail -n 10
fi
echo 1 >/work/misc-exit
if wait_for 5 not has_dest 10.96.0.1:80 10.70.0.61:80; then
    ok "MISC_CHECK: exit 1 takes the server out"
else
    notok "MISC_CHECK: exit 1 takes the server out"; show_log /tmp/misc.log | tail -n 10
fi
echo 0 >/work/misc-exit
if wait_for 5 weight_is 10.96.0.1:80 10.70.0.61:80 10; then
    ok "MISC_CHECK: exit 0 brings it back at the configured weight"
else
    notok "MISC_CHECK: exit 0 brings it back at the configured weight"; show_log /tmp/misc.log | tail -n 10
fi
stop_vigil TERM

echo "# phase file: FILE_CHECK weights and drains from track files"
rm -f /work/file-boost
echo 1 >/work/file-drain
start_vigil file.conf /tmp/file.log || { show_log /tmp/file.log; exit 1; }
wait_for 4 has_dest 10.98.0.1:80 10.70.0.81:80
check "FILE_CHECK: init_file writes the missing file" grep -qx 0 /work/file-boost
check "FILE_CHECK: a drained server (file 1, weight 0) is never installed" not has_dest 10.98.0.1:80 10.70.0.82:80
check "FILE_CHECK: file 0 keeps the configured weight" weight_is 10.98.0.1:80 10.70.0.81:80 10
echo 4 >/work/file-boost
if wait_for 4 weight_is 10.98.0.1:80 10.70.0.81:80 30; then
    ok "FILE_CHECK: 4 in the file sets weight 10 + 4 x 5 = 30"
else
    notok "FILE_CHECK: 4 in the file sets weight 30 (weight $(dest_weight_of 10.98.0.1:80 10.70.0.81:80))"; show_log /tmp/file.log | tail -n 10
fi
echo 0 >/work/file-drain
if wait_for 4 has_dest 10.98.0.1:80 10.70.0.82:80; then
    ok "FILE_CHECK: drain 0 brings the server in"
else
    notok "FILE_CHECK: drain 0 brings the server in"; show_log /tmp/file.log | tail -n 10
fi
echo 3 >/work/file-drain
if wait_for 4 not has_dest 10.98.0.1:80 10.70.0.82:80; then
    ok "FILE_CHECK: drain 3 takes it out again"
else
    notok "FILE_CHECK: drain 3 takes it out again"; show_log /tmp/file.log | tail -n 10
fi
check "FILE_CHECK: keepalived's FAULT line" grep -q "tracked file drain now FAULT state" /tmp/file.log
stop_vigil TERM

echo "# phase datagram: PING_CHECK and UDP_CHECK"
ip addr add 10.70.0.71/32 dev rs0
ip route add 10.70.0.72/32 dev rs0 2>/dev/null || true
start_vigil datagram.conf /tmp/datagram.log || { show_log /tmp/datagram.log; exit 1; }
udp_dest() { ipvsadm -Ln -u 10.97.0.1:53 2>/dev/null | awk '/->/ { print $2 }' | grep -qx "$1"; }
wait_for 6 not udp_dest 10.70.0.75:53
wait_for 4 not udp_dest 10.70.0.72:53
echo "# table:"; ipvsadm -Ln -u 10.97.0.1:53 | sed 's/^/#   /'
check "PING_CHECK: an address that answers ICMP is in" udp_dest 10.70.0.71:53
check "PING_CHECK: an address nobody answers at is out" not udp_dest 10.70.0.72:53
check "UDP_CHECK: port unreachable is down" not udp_dest 10.70.0.73:53
check "UDP_CHECK: silence without require_reply is up" udp_dest 10.70.0.74:53
check "UDP_CHECK: silence with require_reply is down" not udp_dest 10.70.0.75:53
check "PING_CHECK: keepalived's failure line" grep -q "PING_CHECK on service \[10.70.0.72\]:tcp:53 failed" /tmp/datagram.log
stop_vigil TERM

echo "# phase smtp: SMTP_CHECK against busybox nc servers, and the checker mails"
ip addr add 10.70.0.80/32 dev rs0
ip addr add 10.70.0.81/32 dev rs0
# A server that talks SMTP (banner, HELO, QUIT), one that refuses, and a mail sink that keeps
# every line it is sent in /tmp/mail.txt. nc -ll forks one script per connection.
printf '%s\n' '#!/bin/sh' "printf '220 lab ESMTP\\r\\n'" 'while IFS= read -r line; do' \
    '    case "$line" in' "        HELO*) printf '250 lab\\r\\n' ;;" "        QUIT*) printf '221 bye\\r\\n'; exit 0 ;;" \
    "        *) printf '500 what\\r\\n' ;;" '    esac' 'done' >/work/smtp-good.sh
printf '%s\n' '#!/bin/sh' "printf '554 no service here\\r\\n'" >/work/smtp-refuse.sh
printf '%s\n' '#!/bin/sh' "CR=\$(printf '\\r')" "printf '220 sink ESMTP\\r\\n'" 'while IFS= read -r line; do' \
    '    echo "$line" >>/tmp/mail.txt' '    case "$line" in' \
    "        DATA*) printf '354 go ahead\\r\\n'" \
    '            while IFS= read -r body; do echo "$body" >>/tmp/mail.txt; [ "$body" = ".$CR" ] && break; done' \
    "            printf '250 queued\\r\\n' ;;" "        QUIT*) printf '221 bye\\r\\n'; exit 0 ;;" \
    "        *) printf '250 ok\\r\\n' ;;" '    esac' 'done' >/work/smtp-sink.sh
chmod +x /work/smtp-good.sh /work/smtp-refuse.sh /work/smtp-sink.sh
: >/tmp/mail.txt
nc -ll -p 25 -e /work/smtp-good.sh & GOOD=$!
nc -ll -p 26 -e /work/smtp-refuse.sh & REFUSE=$!
nc -ll -p 2525 -e /work/smtp-sink.sh & SINK=$!
sleep 0.3
start_vigil smtp.conf /tmp/smtp.log || { show_log /tmp/smtp.log; exit 1; }
mailed() { tr -d '\r' </tmp/mail.txt | grep -qxF "Subject: [kernel_lab] $1"; }
wait_for 8 not has_dest 10.98.0.1:25 10.70.0.81:26
check "SMTP_CHECK: a server that talks SMTP is in" has_dest 10.98.0.1:25 10.70.0.81:25
check "SMTP_CHECK: a 554 banner is down" not has_dest 10.98.0.1:25 10.70.0.81:26
wait_for 6 mailed "Realserver [10.70.0.81]:tcp:26 of virtual server [10.98.0.1]:tcp:25 - DOWN"
check "mail: the refused server's DOWN reached the SMTP server" mailed "Realserver [10.70.0.81]:tcp:26 of virtual server [10.98.0.1]:tcp:25 - DOWN"
check "mail: keepalived's body for an SMTP_CHECK failure" grep -q "^=> CHECK failed on service : " /tmp/mail.txt
check "mail: the virtual server's quorum at start (smtp_alert)" mailed "Virtualserver [10.98.0.1]:tcp:25 - UP"
check "mail: keepalived's dialogue (HELO, MAIL FROM, RCPT TO)" grep -q "^RCPT TO:<ops@lab.example>" /tmp/mail.txt
kill "$GOOD"; wait "$GOOD" 2>/dev/null
wait_for 8 not has_dest 10.98.0.1:25 10.70.0.81:25
check "SMTP_CHECK: the server stopped: out" not has_dest 10.98.0.1:25 10.70.0.81:25
wait_for 6 mailed "Virtualserver [10.98.0.1]:tcp:25 - DOWN"
check "mail: the stopped server's DOWN" mailed "Realserver [10.70.0.81]:tcp:25 of virtual server [10.98.0.1]:tcp:25 - DOWN"
check "mail: quorum lost" mailed "Virtualserver [10.98.0.1]:tcp:25 - DOWN"
nc -ll -p 25 -e /work/smtp-good.sh & GOOD=$!
wait_for 8 has_dest 10.98.0.1:25 10.70.0.81:25
check "SMTP_CHECK: the server back: in" has_dest 10.98.0.1:25 10.70.0.81:25
check "SMTP_CHECK: keepalived's success line" grep -q "Remote SMTP server \[10.70.0.81\]:tcp:25 succeed on service." /tmp/smtp.log
wait_for 6 mailed "Realserver [10.70.0.81]:tcp:25 of virtual server [10.98.0.1]:tcp:25 - UP"
check "mail: the server's UP" mailed "Realserver [10.70.0.81]:tcp:25 of virtual server [10.98.0.1]:tcp:25 - UP"
check "mail: SMTP alert lines in Vigil's log" grep -q "SMTP alert successfully sent: \[kernel_lab\] Realserver" /tmp/smtp.log
echo "# subjects mailed:"; tr -d '\r' </tmp/mail.txt | grep '^Subject:' | sed 's/^/#   /'
stop_vigil TERM
for p in $GOOD $REFUSE $SINK; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done

echo "# phase flap: a real server whose listener flaps every 100 ms for 10 s"
ip addr add 10.70.0.91/32 dev rs0
ip addr add 10.70.0.92/32 dev rs0
httpd -f -p 10.70.0.92:80 -h /tmp/www &
STEADY=$!
start_vigil flap.conf /tmp/flap.log || { show_log /tmp/flap.log; exit 1; }
wait_for 4 has_dest 10.94.0.1:80 10.70.0.92:80
before=$(wc -l </tmp/flap.log)
end=$(($(date +%s) + 10))
toggles=0
while [ "$(date +%s)" -lt "$end" ]; do
    httpd -f -p 10.70.0.91:80 -h /tmp/www &
    FLAP=$!
    sleep 0.1
    kill "$FLAP" 2>/dev/null; wait "$FLAP" 2>/dev/null
    sleep 0.1
    toggles=$((toggles + 1))
done
lines=$(($(wc -l </tmp/flap.log) - before))
echo "# $toggles up/down cycles; $lines log lines meanwhile"
check "flap: vigil is still running" kill -0 "$VPID"
check "flap: the log stays bounded ($lines lines for $toggles cycles: at most one verdict a second)" [ "$lines" -le 60 ]
check "flap: the steady server was never removed" not grep -q "Removing service \[10.70.0.92\]" /tmp/flap.log
httpd -f -p 10.70.0.91:80 -h /tmp/www &
FLAP=$!
check "flap: listening for good, the server ends in the table" wait_for 4 has_dest 10.94.0.1:80 10.70.0.91:80
kill "$FLAP" 2>/dev/null; wait "$FLAP" 2>/dev/null
check "flap: gone for good, it ends out of the table" wait_for 4 not has_dest 10.94.0.1:80 10.70.0.91:80
check "flap: the steady server is still in" has_dest 10.94.0.1:80 10.70.0.92:80
stop_vigil TERM
kill "$STEADY" 2>/dev/null

echo "# phase scaleout: mh, lvs_sync_daemon, vigil_announce"
ip addr add 10.70.0.95/32 dev rs0
httpd -f -p 10.70.0.95:80 -h /tmp/www &
WEB95=$!
routed() { ip route show table 198 | grep -q "^10.95.0.1 dev lo"; }
daemons() { ipvsadm -L --daemon 2>/dev/null; }
start_vigil scaleout.conf /tmp/scaleout.log || { show_log /tmp/scaleout.log; exit 1; }
table -t 10.95.0.1:80 | sed 's/^/#   /'; daemons | sed 's/^/#   /'
check "mh with mh-port and mh-fallback reaches the kernel" sh -c 'ipvsadm -Ln -t 10.95.0.1:80 | grep -q "^TCP  10.95.0.1:80 mh (mh-fallback,mh-port)"'
# The threads start in the loop's first turn, after the table is programmed (the CI run of
# 2026-12-02 18:20 looked before that turn had come).
check "lvs_sync_daemon without an instance: a master thread" wait_for 3 sh -c 'ipvsadm -L --daemon | grep -q "^master sync daemon (mcast=rs0, syncid=9"'
check "lvs_sync_daemon without an instance: and a backup thread" wait_for 3 sh -c 'ipvsadm -L --daemon | grep -q "^backup sync daemon (mcast=rs0, syncid=9"'
check "lvs_sync_daemon: the port reaches the kernel" sh -c 'ipvsadm -L --daemon | grep -q "port=8850"'
check "vigil_announce: the route is in table 198 while the service has quorum" wait_for 3 routed
kill "$WEB95"; wait "$WEB95" 2>/dev/null
t=$(now)
if wait_for 4 not routed; then ok "vigil_announce: withdrawn $(elapsed "$t") s after the only real server stopped (bound 4 s)"
else notok "vigil_announce: withdrawn when quorum is lost"; show_log /tmp/scaleout.log | tail -n 10; fi
httpd -f -p 10.70.0.95:80 -h /tmp/www &
WEB95=$!
check "vigil_announce: back when the server is" wait_for 4 routed
stop_vigil KILL
check "after SIGKILL the route and the sync threads stay behind" sh -c 'ip route show table 198 | grep -q "^10.95.0.1 " && ipvsadm -L --daemon | grep -q "master sync"'
start_vigil scaleout.conf /tmp/scaleout2.log || show_log /tmp/scaleout2.log
sleep 1
check "restart: the route still wanted is kept, not withdrawn and re-added" sh -c 'ip route show table 198 | grep -q "^10.95.0.1 dev lo" && grep -q "1 routes of a previous run still wanted: kept" /tmp/scaleout2.log && ! grep -q "withdrawing 10.95.0.1" /tmp/scaleout2.log'
check "restart: the sync threads as wanted are kept, not restarted" sh -c '! grep -q "started the master" /tmp/scaleout2.log && ipvsadm -L --daemon | grep -q "master sync"'
ip route del 10.95.0.1/32 dev lo table 198
check "a route someone deleted is put back within 2 s" wait_for 2 routed
stop_vigil TERM
check "SIGTERM: the route is withdrawn" not routed
check "SIGTERM: both sync threads are stopped" sh -c '[ -z "$(ipvsadm -L --daemon)" ]'
# The pair mode: the sync threads follow a VRRP instance (alone on its link, a dummy with
# multicast on, it becomes MASTER).
ip link add sv0 type dummy
ip link set sv0 multicast on
ip link set sv0 up
ip addr add 10.96.0.1/24 dev sv0
start_vigil syncpair.conf /tmp/syncpair.log || show_log /tmp/syncpair.log
check "lvs_sync_daemon inst: a backup thread while the instance is BACKUP, sync id = its VRID" wait_for 2 sh -c 'ipvsadm -L --daemon | grep -q "^backup sync daemon (mcast=sv0, syncid=51" && ! ipvsadm -L --daemon | grep -q "^master"'
if wait_for 8 sh -c 'ipvsadm -L --daemon | grep -q "^master sync daemon (mcast=sv0, syncid=51"'; then
    ok "lvs_sync_daemon inst: MASTER moves it to a master thread"
else
    notok "lvs_sync_daemon inst: MASTER moves it to a master thread"; ipvsadm -L --daemon | sed 's/^/#   /'; show_log /tmp/syncpair.log | tail -n 8
fi
check "lvs_sync_daemon inst: the backup thread stopped first (one thread left)" sh -c '[ "$(ipvsadm -L --daemon | wc -l)" = 1 ]'
stop_vigil TERM
check "lvs_sync_daemon inst: SIGTERM stops it" sh -c '[ -z "$(ipvsadm -L --daemon)" ]'
ip link del sv0

echo "# phase lvs_timeouts"
# ipvsadm prints "Timeout (tcp tcpfin udp): 900 120 300" (the kernel's defaults).
timeouts() { ipvsadm -L --timeout | awk '{ print $(NF-2), $(NF-1), $NF }'; }
before=$(timeouts)
start_vigil timeouts.conf /tmp/timeouts.log || show_log /tmp/timeouts.log
timeouts_are() { [ "$(timeouts)" = "$1" ]; }
check "lvs_timeouts tcp 7200 tcpfin 60: set, udp kept (the kernel had $before)" wait_for 2 timeouts_are "7200 60 ${before##* }" \
    || { echo "#   ipvsadm: $(timeouts)"; show_log /tmp/timeouts.log | grep -i "timeout\|ipvs"; }
stop_vigil TERM
if [ "$(timeouts)" = "$before" ]; then ok "lvs_timeouts: the kernel's values back at stop ($before)"
else notok "lvs_timeouts: the kernel's values back at stop (want $before, have $(timeouts))"; show_log /tmp/timeouts.log | tail -n 5; fi

echo "# phase ha_suspend"
start_vigil hasuspend.conf /tmp/hasuspend.log || show_log /tmp/hasuspend.log
suspension() { grep -q "$1 healthchecker for service \[10.60.0.11\]:tcp:80 for VS \[10.92.0.1\]:tcp:80" /tmp/hasuspend.log; }
check "ha_suspend: the checker is deactivated at start (10.92.0.1 is not here)" suspension Deactivating
check "ha_suspend: the real server is installed all the same" has_dest 10.92.0.1:80 10.60.0.11:80
ip addr add 10.92.0.1/32 dev lo
check "ha_suspend: the address added by hand activates it (netlink monitor)" wait_for 2 suspension Activating
ip addr del 10.92.0.1/32 dev lo
check "ha_suspend: the address deleted suspends it again" wait_for 2 suspension Suspending
stop_vigil TERM

echo "# phase lvs_flush"
start_vigil flush.conf /tmp/flush.log
check "lvs_flush empties the table first, foreign service included" sh -c '! ipvsadm -Ln | grep -q 10.99.9.9'
check "lvs_flush then installs the configured service" has_dest 10.90.0.1:80 10.60.0.11:80
stop_vigil TERM

echo "# $n cases, $failed failed"
[ "$failed" -eq 0 ]
