#!/bin/sh
# Guest script proving the kernel lab works: run it with
#   contrib/kernel-lab/run.sh contrib/kernel-lab/selftest.sh
# It runs inside the guest (busybox sh) and drives the kernel's IPVS table with ipvsadm.
set -euo pipefail

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: runs the command, counts a failure instead of stopping.
check() { d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
# has REGEX: the current `ipvsadm -Ln` output has a line matching the extended regex.
has() { echo "$table" | grep -Eq "$1"; }

echo "== kernel $(uname -r)"
check "IPVS is in the kernel (/proc/net/ip_vs)" test -e /proc/net/ip_vs

echo "== a wlc service with persistence, one DR and one NAT destination"
ipvsadm -C
ipvsadm -A -t 10.0.0.1:80 -s wlc -p 360
ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 2
ipvsadm -a -t 10.0.0.1:80 -r 192.168.1.11:8080 -m -w 1
table=$(ipvsadm -Ln)
echo "$table"
check "service TCP 10.0.0.1:80 wlc persistent 360" has '^TCP  10\.0\.0\.1:80 wlc persistent 360 *$'
check "DR destination, weight 2" has '^  -> 192\.168\.1\.10:80 +Route +2 +0 +0 *$'
check "NAT destination, weight 1" has '^  -> 192\.168\.1\.11:8080 +Masq +1 +0 +0 *$'
check "exactly two destinations" test "$(echo "$table" | grep -c '^  -> [0-9]')" -eq 2
# The kernel's own view, independent of ipvsadm's netlink decoding: addresses in hex, and the
# persistence timeout in jiffies (360 s x HZ, HZ=250 on Debian's kernel: 90000).
cat /proc/net/ip_vs
check "/proc/net/ip_vs: service 0A000001:0050 wlc persistent" grep -Eq '^TCP  0A000001:0050 wlc +persistent [0-9]+ FFFFFFFF' /proc/net/ip_vs
check "/proc/net/ip_vs: DR destination C0A8010A:0050 weight 2" grep -Eq '^  -> C0A8010A:0050 +Route +2 ' /proc/net/ip_vs

echo "== edit and delete"
ipvsadm -e -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 5
table=$(ipvsadm -Ln)
check "DR destination re-weighted to 5" has '^  -> 192\.168\.1\.10:80 +Route +5 '
ipvsadm -d -t 10.0.0.1:80 -r 192.168.1.11:8080
table=$(ipvsadm -Ln)
check "NAT destination deleted" eval '! has 192\.168\.1\.11'
ipvsadm -D -t 10.0.0.1:80
table=$(ipvsadm -Ln)
check "service deleted, table empty" eval '! has "^(TCP|UDP|FWM) "'

echo "== every scheduler module present loads (by the kernel's request_module)"
# One service per scheduler, 10.0.0.2 on ports 8001, 8002, ...: created one by one, then checked
# with a single listing (each ipvsadm run costs about 0.1 s under TCG).
port=8000
for s in $(cat /etc/kernel-lab/schedulers); do
    port=$((port + 1))
    ipvsadm -A -t 10.0.0.2:$port -s "$s" 2>/tmp/err || bad "scheduler $s: $(cat /tmp/err)"
done
table=$(ipvsadm -Ln)
mods=$(lsmod)
port=8000
for s in $(cat /etc/kernel-lab/schedulers); do
    port=$((port + 1))
    if ! has "^TCP  10\.0\.0\.2:$port $s *\$"; then bad "scheduler $s: service not listed"
    elif ! echo "$mods" | grep -q "^ip_vs_$s "; then bad "scheduler $s: module ip_vs_$s not loaded"
    else ok "scheduler $s"; fi
done
ipvsadm -C
check "table cleared" test -z "$(ipvsadm -Ln | grep -E '^(TCP|UDP|FWM) ')"
echo "scheduler modules loaded: $(echo "$mods" | awk '/^ip_vs_/ { sub("ip_vs_", "", $1); printf "%s ", $1 }')"

echo "== $fails failure(s)"
[ "$fails" -eq 0 ]
