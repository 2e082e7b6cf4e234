# Shared by the host-side benchmarks (failover.sh, status.sh); sourced, not run.

rss_of_tree() { # KiB of a pid and all its descendants
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        total=$((total + $(awk '/^VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0)))
    done
    echo $total
}
