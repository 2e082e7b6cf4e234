# Guest-side helpers the kernel-lab benchmark scripts share (reload.guest.sh,
# tcpcheck-cpu.guest.sh, jitter.guest.sh), sourced by busybox sh from /work (the host scripts copy it there).

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

alive() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat"; }

# bench_real_servers MODE: REALS addresses 10.30.0.1.. on a dummy bench0, port 80, served by
# `benchtool acceptor` (MODE empty: accept and close; --http: a page) or, with --tls, by
# benchtls; waits until it listens. Sets addrs and apid (the server's pid).
bench_real_servers() {
    ip link add bench0 type dummy
    ip link set bench0 up
    addrs=
    for i in $(seq 1 "$REALS"); do
        ip addr add "10.30.0.$i/32" dev bench0
        addrs="$addrs 10.30.0.$i"
    done
    if [ "$1" = --tls ]; then
        /work/benchtls 80 /work/bench-cert.pem /work/bench-key.pem $addrs >/tmp/acceptor.log 2>&1 &
    else
        /work/benchtool acceptor $1 80 $addrs >/tmp/acceptor.log 2>&1 &
    fi
    apid=$!
    i=0
    until grep -q listening /tmp/acceptor.log; do
        i=$((i + 1)); [ $i -lt 300 ] || { cat /tmp/acceptor.log; exit 1; }
        sleep 0.01
    done
}
