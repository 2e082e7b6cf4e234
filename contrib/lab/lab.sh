#!/usr/bin/env bash
# Vigil's network-namespace lab: the lvs01/lvs02 deployment of etc/keepalived on one machine.
#
#   vlab-sw      bridge vlab-br (the "switch"; no host interface is ever touched)
#   vlab-lvs01   eth0 172.16.10.41/24, fake haproxy on 127.0.0.1:80, runs vigil or keepalived
#   vlab-lvs02   eth0 172.16.10.42/24, likewise
#   vlab-web01   eth0 172.16.10.43/24, HTTP on :80
#   vlab-web02   eth0 172.16.10.44/24, HTTP on :80
#   vlab-client  eth0 172.16.10.50/24
#   VIP 172.16.10.40/24 (VRID 77), held by whichever director is master.
#
# Every process the lab starts is recorded as "PID STARTTIME" in $STATE/pids/NAME.pid; it is only
# ever signalled while /proc/PID still shows that start time, so a recycled pid is never hit.
# Usage: see `lab.sh help` and contrib/lab/README.md. Needs root.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${VIGIL_LAB_DIR:-/run/vigil-lab}
PIDS=$STATE/pids
SW=vlab-sw BR=vlab-br
NET=172.16.10 VIP=172.16.10.40
NODES=(lvs01 lvs02 web01 web02 client)
declare -A HOST=([lvs01]=41 [lvs02]=42 [web01]=43 [web02]=44 [client]=50)
METRICS_PORT=9165
PY=/usr/bin/python3 # the system one: a pyenv shim may not be set up for root in every shell
[ -x "$PY" ] || PY=python3

die() { echo "lab: $*" >&2; exit 1; }
say() { echo "lab: $*"; }
ns() { echo "vlab-$1"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
lab_is_up() { local n; for n in "$SW" "${NODES[@]/#/vlab-}"; do ns_exists "$n" || return 1; done; }
need_up() { lab_is_up || die "the lab is not up (run: $0 up)"; }
need_director() { case "${1:-}" in lvs01|lvs02) ;; *) die "NODE must be lvs01 or lvs02, not '${1:-}'" ;; esac; }

# --- process records -------------------------------------------------------------------------
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
# Records the pid of the job just started with `&` (setsid and `ip netns exec` exec in place,
# so $! is the final program's pid).
record() { local st; st=$(starttime "$2") || true; echo "$2 ${st:-0}" >"$PIDS/$1.pid"; }
# Prints the recorded pid if that process still runs (zombies count as gone).
live_pid() {
    local f=$PIDS/$1.pid pid st state
    [ -f "$f" ] || return 1
    read -r pid st <"$f"
    [ "$(starttime "$pid")" = "$st" ] || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ] || return 1
    echo "$pid"
}
# The process and all its descendants (keepalived forks a VRRP child, which forks scripts).
tree() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree "$c"; done; }
wait_gone() { # wait_gone NAME SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do live_pid "$1" >/dev/null || return 0; sleep 0.1; done
    return 1
}
# Stops a recorded process: SIGTERM, then (after $2 s) SIGSTOP+SIGKILL of its whole tree.
stop_proc() {
    local pid
    pid=$(live_pid "$1") || { rm -f "$PIDS/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$1" "${2:-3}"; then
        say "$1 (pid $pid) ignored SIGTERM; killing it"
        hard_kill "$pid"
        wait_gone "$1" 3 || say "warning: $1 (pid $pid) still there"
    fi
    rm -f "$PIDS/$1.pid"
}
# SIGSTOP every process of the tree before SIGKILL: a child with a parent-death signal would
# otherwise still send a priority-0 goodbye advert when the parent dies first.
hard_kill() {
    local pids
    mapfile -t pids < <(tree "$1")
    kill -STOP "${pids[@]}" 2>/dev/null || true
    kill -KILL "${pids[@]}" 2>/dev/null || true
}
# Starts "$@" in its own session (Ctrl-C on a terminal must not reach lab processes: the lab
# decides when they stop), output to LOG, and records it as NAME.
spawn() { # spawn NAME LOG CMD...
    local name=$1 log=$2; shift 2
    setsid "$@" </dev/null >>"$log" 2>&1 &
    record "$name" $!
}
wait_port() { # wait_port NS ADDR PORT: until something accepts connections there (5 s)
    local i
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# --- listeners -------------------------------------------------------------------------------
# The directors' "haproxy" only has to accept TCP on their own loopback: check_haproxy.sh probes it.
haproxy_up() {
    live_pid "haproxy-$1" >/dev/null && return 0
    mkdir -p "$STATE/www/$1"
    echo "haproxy stand-in on $1" >"$STATE/www/$1/index.html"
    spawn "haproxy-$1" "$STATE/haproxy-$1.log" \
        ip netns exec "$(ns "$1")" "$PY" -m http.server --bind 127.0.0.1 --directory "$STATE/www/$1" 80
    wait_port "$(ns "$1")" 127.0.0.1 80 || die "fake haproxy on $1 did not come up (see $STATE/haproxy-$1.log)"
}
web_up() {
    live_pid "web-$1" >/dev/null && return 0
    mkdir -p "$STATE/www/$1"
    echo "hello from $1" >"$STATE/www/$1/index.html"
    spawn "web-$1" "$STATE/web-$1.log" \
        ip netns exec "$(ns "$1")" "$PY" -m http.server --bind 0.0.0.0 --directory "$STATE/www/$1" 80
    wait_port "$(ns "$1")" "$NET.${HOST[$1]}" 80 || die "web server on $1 did not come up (see $STATE/web-$1.log)"
}

# --- subcommands -----------------------------------------------------------------------------
cmd_up() {
    if lab_is_up; then
        say "already up"
    else
        command -v "$PY" >/dev/null || die "python3 is needed for the lab's listeners (apt-get install python3)"
        cmd_down >/dev/null # clear a half-built lab
        mkdir -p "$PIDS"
        rm -f "$STATE"/*.log "$STATE"/capture.* # a fresh lab starts with fresh logs
        # Everything is created inside our own namespaces (ip -n), so the host sees nothing.
        ip netns add "$SW"
        ip -n "$SW" link set lo up
        ip -n "$SW" link add "$BR" type bridge
        ip -n "$SW" link set "$BR" up
        local n
        for n in "${NODES[@]}"; do
            ip netns add "$(ns "$n")"
            ip -n "$(ns "$n")" link set lo up
            ip -n "$SW" link add "$n" type veth peer name eth0 netns "$(ns "$n")"
            ip -n "$SW" link set "$n" master "$BR" up
            ip -n "$(ns "$n")" addr add "$NET.${HOST[$n]}/24" dev eth0
            ip -n "$(ns "$n")" link set eth0 up
        done
        say "namespaces up: $SW (bridge $BR), ${NODES[*]/#/vlab-}"
    fi
    mkdir -p "$PIDS"
    haproxy_up lvs01; haproxy_up lvs02; web_up web01; web_up web02
    say "fake haproxy on lvs01/lvs02 (127.0.0.1:80), HTTP on web01/web02 (:80); state in $STATE"
}

cmd_down() {
    local f name n pid
    if [ -d "$PIDS" ]; then
        for f in "$PIDS"/*.pid; do
            [ -e "$f" ] || continue
            name=$(basename "$f" .pid)
            stop_proc "$name" 5
        done
    fi
    for n in "${NODES[@]/#/vlab-}" "$SW"; do
        ns_exists "$n" || continue
        # Anything left in our own namespaces was started by the lab (e.g. a record was lost).
        for pid in $(ip netns pids "$n" 2>/dev/null); do hard_kill "$pid"; done
        ip netns del "$n"
    done
    say "down"
}

daemon_cmd() { # daemon_cmd NODE DAEMON: prints nothing, fills CMD
    local node=$1 conf=${LAB_CONF_DIR:-$REPO/etc/keepalived}/$1.conf run=$STATE/run/$1
    [ -f "$conf" ] || die "no config $conf"
    rm -rf "$run"; mkdir -p "$run" # fresh pid files each run, or keepalived says "already running"
    case "$2" in
    keepalived)
        command -v keepalived >/dev/null || die "keepalived is not installed (apt-get install keepalived)"
        CMD=(keepalived -n -l -D -f "$conf" -p "$run/keepalived.pid" -r "$run/vrrp.pid" -c "$run/checkers.pid") ;;
    vigil)
        local bin=${VIGIL_BIN:-$(cd "$REPO" && swift build --show-bin-path 2>/dev/null)/vigil}
        [ -x "$bin" ] || die "$bin is not built (run: swift build, or set VIGIL_BIN)"
        # Each director has its own control socket; /metrics is on the namespace's own loopback.
        CMD=("$bin" -n -l -D -f "$conf" -p "$run/vigil.pid" --control "$run/vigil.sock" --metrics "127.0.0.1:$METRICS_PORT") ;;
    *) die "DAEMON must be vigil or keepalived, not '$2'" ;;
    esac
}

cmd_start() {
    local node=${1:-} daemon=${2:-} pid log
    need_director "$node"; need_up
    if pid=$(live_pid "daemon-$node"); then
        say "$node already runs $(cat "$STATE/daemon-$node.name" 2>/dev/null) (pid $pid)"
        [ "$(cat "$STATE/daemon-$node.name" 2>/dev/null)" = "$daemon" ] && return 0
        die "stop it first: $0 stop $node"
    fi
    daemon_cmd "$node" "$daemon"
    # Installed packages create /etc/keepalived; it only has to exist as a mount point.
    [ -d /etc/keepalived ] || mkdir -m 0755 /etc/keepalived
    log=$STATE/$node.log
    echo "=== $(date '+%F %T') lab: $daemon on $node: ${CMD[*]}" >>"$log"
    # `ip netns exec` gives a private mount namespace, so this tmpfs hides the host's
    # /etc/keepalived from this daemon only. mode=0755: tmpfs defaults to 1777, and
    # enable_script_security refuses scripts under a world-writable directory.
    # `exec` keeps the recorded pid the daemon's own.
    # shellcheck disable=SC2016 # $0 and $@ are the inner sh's arguments
    # TMPDIR: keepalived's and Vigil's dump files (SIGUSR1, SIGUSR2, SIGJSON) go to $run.
    # LAB_FULL_DISK=1: the daemon's run directory (pid file, control socket, dumps) is a
    # tmpfs with no block and no inode left, seen by this daemon only (the fault matrix's row).
    full=""
    [ "${LAB_FULL_DISK:-}" = 1 ] && full=$STATE/run/$node
    TMPDIR="$STATE/run/$node" LAB_FULL_RUN="$full" spawn "daemon-$node" "$log" ip netns exec "$(ns "$node")" sh -c \
        'mount -t tmpfs -o mode=0755 vlab /etc/keepalived &&
         install -m 0755 "$0" /etc/keepalived/check_haproxy.sh || exit 1
         if [ -n "$LAB_FULL_RUN" ]; then
             mount -t tmpfs -o size=64k,nr_inodes=16 vfull "$LAB_FULL_RUN" || exit 1
             i=0; while (: >"$LAB_FULL_RUN/fill$i") 2>/dev/null; do i=$((i + 1)); done
             dd if=/dev/zero of="$LAB_FULL_RUN/fill0" bs=4k 2>/dev/null
             echo "lab: $LAB_FULL_RUN is full: $i files, $(df -k "$LAB_FULL_RUN" | tail -n 1)"
         fi
         exec "$@"' \
        "$REPO/contrib/check_haproxy.sh" "${CMD[@]}"
    echo "$daemon" >"$STATE/daemon-$node.name"
    sleep 0.5
    pid=$(live_pid "daemon-$node") || { tail -n 20 "$log" >&2; die "$daemon on $node exited at once (log: $log)"; }
    say "$daemon started on $node (pid $pid, log $log)"
}

cmd_stop() {
    local node=${1:-} pid
    need_director "$node"
    pid=$(live_pid "daemon-$node") || { say "no daemon running on $node"; return 0; }
    stop_proc "daemon-$node" 10
    say "stopped the daemon on $node (pid $pid, SIGTERM)"
}

cmd_kill() {
    local node=${1:-} pid
    need_director "$node"
    pid=$(live_pid "daemon-$node") || { say "no daemon running on $node"; return 0; }
    hard_kill "$pid"
    wait_gone "daemon-$node" 5 || die "pid $pid survived SIGKILL?"
    rm -f "$PIDS/daemon-$node.pid"
    say "killed the daemon on $node (pid $pid and children: SIGSTOP, then SIGKILL)"
}

cmd_reload() {
    local node=${1:-} pid
    need_director "$node"
    pid=$(live_pid "daemon-$node") || die "no daemon running on $node"
    kill -HUP "$pid"
    say "sent SIGHUP to the daemon on $node (pid $pid)"
}

vigil_cli() { local bin=${VIGIL_BIN:-$(cd "$REPO" && swift build --show-bin-path 2>/dev/null)/vigil}; echo "$bin"; }

cmd_ask() { # cmd_ask NODE status|reload [--json]: the vigil CLI against NODE's control socket
    local node=${1:-}
    need_director "$node"
    [ "$(cat "$STATE/daemon-$node.name" 2>/dev/null)" = vigil ] || die "$node does not run vigil"
    shift
    "$(vigil_cli)" "$@" --control "$STATE/run/$node/vigil.sock"
}

cmd_metrics() { # cmd_metrics NODE: one scrape of NODE's /metrics, from inside its namespace
    local node=${1:-}
    need_director "$node"; need_up
    ip netns exec "$(ns "$node")" "$PY" -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$METRICS_PORT"
}

cmd_who() {
    local n found=0
    need_up
    for n in "${NODES[@]}"; do
        # 2>/dev/null: ip may complain about other namespaces appearing or vanishing meanwhile.
        ip -n "$(ns "$n")" -4 addr show dev eth0 2>/dev/null | grep -q " $VIP/" || continue
        found=1
        if [[ $n == lvs* ]] && ! live_pid "daemon-$n" >/dev/null; then
            echo "$n (stale: its daemon is gone, a SIGKILL leaves the address behind)"
        else
            echo "$n"
        fi
    done
    [ $found = 1 ] || echo "nobody"
}

cmd_haproxy() { # cmd_haproxy up|down NODE
    need_director "${2:-}"; need_up
    if [ "$1" = up ]; then haproxy_up "$2"; say "fake haproxy on $2 is up"
    else stop_proc "haproxy-$2"; say "fake haproxy on $2 is down"; fi
}

cmd_capture() {
    local file=$STATE/capture.txt i
    case "${1:-}" in
    start)
        need_up
        live_pid capture >/dev/null && { say "capture already running ($file)"; return 0; }
        : >"$file"; : >"$STATE/capture.err"
        # -l: line-buffered, so the file can be read while the capture runs.
        setsid ip netns exec "$SW" tcpdump -l -n -e -tt -v -i "$BR" 'vrrp or arp or ip proto 51' \
            </dev/null >"$file" 2>"$STATE/capture.err" &
        record capture $!
        for ((i = 0; i < 50; i++)); do grep -q "listening on" "$STATE/capture.err" && break; sleep 0.1; done
        live_pid capture >/dev/null || die "tcpdump failed: $(cat "$STATE/capture.err")"
        say "capturing VRRP and ARP on $BR to $file" ;;
    stop)
        stop_proc capture
        say "capture stopped: $file" ;;
    *) die "usage: $0 capture start|stop" ;;
    esac
}

cmd_status() {
    local f name pid
    if ! lab_is_up; then say "not up"; return 0; fi
    say "up (state in $STATE)"
    for f in "$PIDS"/*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        pid=$(live_pid "$name") && echo "  $name: pid $pid" || echo "  $name: not running"
    done
    echo "  VIP $VIP on: $(cmd_who | paste -sd, -)"
}

usage() {
    cat <<EOF
usage: $0 COMMAND
  up                       create the namespaces, bridge, fake haproxy and web servers
  down                     stop everything the lab started and delete its namespaces
  start NODE vigil|keepalived   run a daemon on lvs01|lvs02 (log: $STATE/NODE.log)
  stop NODE                SIGTERM the daemon (it releases the VIP)
  kill NODE                SIGSTOP+SIGKILL the daemon and its children (a crash)
  reload NODE              SIGHUP the daemon (it re-reads NODE.conf)
  haproxy-down NODE        stop NODE's fake haproxy (the track script then fails)
  haproxy-up NODE          start it again
  ask NODE status [--json] | reload   the vigil CLI against NODE's control socket
  metrics NODE             scrape NODE's /metrics (vigil listens on 127.0.0.1:$METRICS_PORT in its namespace)
  who                      which namespace holds $VIP
  capture start|stop       tcpdump VRRP (AH too) and ARP on the bridge to $STATE/capture.txt
  status                   what runs
EOF
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
case "${1:-help}" in
up) cmd_up ;;
down) cmd_down ;;
start) cmd_start "${2:-}" "${3:-}" ;;
stop) cmd_stop "${2:-}" ;;
kill) cmd_kill "${2:-}" ;;
reload) cmd_reload "${2:-}" ;;
haproxy-down) cmd_haproxy down "${2:-}" ;;
haproxy-up) cmd_haproxy up "${2:-}" ;;
ask) shift; cmd_ask "$@" ;;
metrics) cmd_metrics "${2:-}" ;;
who) cmd_who ;;
capture) cmd_capture "${2:-}" ;;
status) cmd_status ;;
help | -h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
