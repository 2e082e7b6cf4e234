#!/usr/bin/env bash
# `make demo`: a VRRP failover between the two directors of etc/keepalived, in the namespace lab
# (contrib/lab). Brings the lab up, starts ${DAEMON:-vigil} (or DAEMON=keepalived, the reference)
# on lvs01 then lvs02, kills the master hard and measures the takeover from a packet capture.
# Builds nothing (make demo builds first). Always tears the lab down, even on Ctrl-C.
# Exits non-zero if the failover did not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=contrib/lab/lab.sh
DAEMON=${DAEMON:-vigil}
STATE=${VIGIL_LAB_DIR:-/run/vigil-lab}
VIP=172.16.10.40
declare -A ADDR=([lvs01]=172.16.10.41 [lvs02]=172.16.10.42)

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; } # floating point, without bc
elapsed() { awk "BEGIN { printf \"%.1f\", $(now) - $1 }"; }
fail() {
    printf '\nFAILED: %s\n' "$*" >&2
    for n in lvs01 lvs02; do
        [ -s "$STATE/$n.log" ] && { echo "--- last lines of $STATE/$n.log" >&2; tail -n 8 "$STATE/$n.log" >&2; }
    done
    exit 1
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    trap '' INT TERM # a second Ctrl-C must not abort the cleanup
    step "Cleaning up"
    # Own session: a Ctrl-C on the terminal does not reach it.
    setsid -w "$LAB" down | sed 's/^/    /' || true
    [ $rc = 0 ] || info "(logs and capture kept in $STATE)"
    exit $rc
}
trap cleanup EXIT
trap 'echo; echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces); try: sudo make demo"
for tool in ip tcpdump setsid; do command -v $tool >/dev/null || fail "$tool is not installed"; done

# Live holders of the VIP, one per line (`who` marks a killed daemon's leftover address stale).
holders() { "$LAB" who | grep -v -e stale -e nobody || true; }
wait_holder() { # wait_holder SECONDS [NOT]: prints the single live holder, other than NOT
    local end h
    end=$(calc "$(now) + $1")
    while awk "BEGIN { exit !($(now) < $end) }"; do
        h=$(holders)
        [ -n "$h" ] && [ "$(wc -l <<<"$h")" = 1 ] && [ "$h" != "${2:-}" ] && { echo "$h"; return 0; }
        sleep 0.2
    done
    return 1
}
mac() { ip -n "vlab-$1" -br link show dev eth0 2>/dev/null | awk '{print $3}'; }
client_reaches_vip() { # ping from the client, then report whose MAC it used for the VIP
    local how m
    if command -v ping >/dev/null; then
        how=ping
        ip netns exec vlab-client ping -c1 -W1 -q "$VIP" >/dev/null || return 1
    else # without iputils-ping: a TCP SYN to a closed port is refused (RST) only if the VIP answers
        how="TCP probe"
        ip netns exec vlab-client timeout 1 bash -c "exec 3<>/dev/tcp/$VIP/9" 2>&1 | grep -q refused || return 1
    fi
    m=$(ip -n vlab-client neigh show "$VIP" | awk '{print $5}')
    info "client: $how $VIP ok, answered by MAC $m ($([ "$m" = "$(mac "$1")" ] && echo "$1's eth0" || echo "NOT $1's eth0"))"
    [ "$m" = "$(mac "$1")" ]
}

step "Lab: namespaces vlab-{sw,lvs01,lvs02,web01,web02,client} on bridge vlab-br, 172.16.10.0/24"
"$LAB" down >/dev/null
"$LAB" up | sed 's/^/    /'
"$LAB" capture start | sed 's/^/    /'

step "Starting $DAEMON on lvs01 (priority 100), then lvs02 (priority 95); both BACKUP, nopreempt"
STARTED=$(now)
"$LAB" start lvs01 "$DAEMON" | sed 's/^/    /'
"$LAB" start lvs02 "$DAEMON" | sed 's/^/    /'
MASTER=$(wait_holder 15) || fail "after 15 s, not exactly one director holds $VIP (who: $("$LAB" who | paste -sd' '))"
BACKUP=$([ "$MASTER" = lvs01 ] && echo lvs02 || echo lvs01)
info "$MASTER is master: it holds $VIP ($(elapsed "$STARTED") s after lvs01 started); $BACKUP is backup"
client_reaches_vip "$MASTER" || fail "the client cannot reach $VIP on $MASTER"

step "Killing $DAEMON on $MASTER hard (SIGSTOP, then SIGKILL: no goodbye advert)"
sleep 1.5 # let a few adverts of the settled master reach the capture
KILLED=$(now)
"$LAB" kill "$MASTER" | sed 's/^/    /'
NEW=$(wait_holder 10 "$MASTER") || fail "$BACKUP did not take $VIP over within 10 s"
[ "$NEW" = "$BACKUP" ] || fail "unexpected holder $NEW"
info "$NEW took $VIP over ($(elapsed "$KILLED") s after the kill)"
sleep 1 # the new master's first adverts and gratuitous ARPs
"$LAB" capture stop >/dev/null

step "Takeover time, from the capture ($STATE/capture.txt)"
# tcpdump -v prints each packet on two lines: "EPOCH MAC > MAC, ... proto VRRP ..." then
# "    SRC > 224.0.0.18: VRRPv2, Advertisement, vrid 77, prio N, ..., intvl Ns, ...".
# The old master's last advert (it is dead now, so that is its last before the kill), then the
# new master's first advert after it (the capture is in time order).
read -r LAST FIRST PRIO INTVL GOODBYE < <(awk -v old="${ADDR[$MASTER]}" -v new="${ADDR[$BACKUP]}" '
    /^[0-9]+\.[0-9]+ / { ts = $1; next }
    /VRRPv2, Advertisement/ {
        sub(/^ +/, ""); src = $1
        prio = $0; sub(/.*prio /, "", prio); sub(/,.*/, "", prio)
        intvl = $0; sub(/.*intvl /, "", intvl); sub(/s,.*/, "", intvl)
        if (src == old && prio > 0) { last = ts; first = "" }
        if (src == old && prio == 0) goodbye = 1
        if (src == new && last && !first) { first = ts; p = prio; iv = intvl }
    }
    END { printf "%s %s %s %s %d\n", last ? last : "-", first ? first : "-", p ? p : 0, iv ? iv : 0, goodbye }
' "$STATE/capture.txt")
if [ "$LAST" = - ] || [ "$FIRST" = - ]; then
    fail "no takeover in the capture (old master's last advert: $LAST, new master's first: $FIRST)"
fi
[ "$GOODBYE" = 0 ] || info "warning: $MASTER sent a priority-0 advert: the kill was not a crash"
GAP=$(calc "$FIRST - $LAST")
BOUND=$(calc "3 * $INTVL + (256 - $PRIO) / 256")
clock() { date -d "@$1" +%T.%6N; }
info "$MASTER's last advert:  $(clock "$LAST")"
info "$NEW's first advert: $(clock "$FIRST")  (priority $PRIO, advert interval $INTVL s)"
printf '    takeover gap: %.3f s    RFC 3768 bound 3 x %s + (256 - %s)/256 = %.3f s    (%+.1f ms)\n' \
    "$GAP" "$INTVL" "$PRIO" "$BOUND" "$(calc "($GAP - $BOUND) * 1000")"

step "After the failover"
"$LAB" who | sed "s/^/    $VIP on: /"
client_reaches_vip "$NEW" || fail "the client cannot reach $VIP on $NEW"
if [ "$DAEMON" = vigil ]; then
    step "What $NEW says about it: vigil status, and two of its Prometheus series"
    "$LAB" ask "$NEW" status | sed 's/^/    /'
    "$LAB" metrics "$NEW" | grep -E '^(keepalived_vrrp_state|vigil_vrrp_transitions_total)' | sed 's/^/    /'
fi
printf '\nFailover OK with %s: %s -> %s in %.3f s.\n' "$DAEMON" "$MASTER" "$NEW" "$GAP"
