# Guest-side helpers the kernel-lab benchmark scripts share (reload.guest.sh,
# tcpcheck-cpu.guest.sh), sourced by busybox sh from /work (the host scripts copy it there).

# bench_results NAME...: `"NAME": [ROUND, ...]` for each NAME that has /tmp/results-NAME (one
# JSON object a line, a round each), joined with commas, for the BENCH-JSON line.
bench_results() {
    results=
    for name in "$@"; do
        [ -s "/tmp/results-$name" ] || continue
        results="$results${results:+, }\"$name\": [$(awk 'BEGIN { ORS = "" } { print (NR > 1 ? ", " : "") $0 }' "/tmp/results-$name")]"
    done
    echo "$results"
}
