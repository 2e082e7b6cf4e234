#!/usr/bin/env bash
# `make bench`: every benchmark in one go against Debian's keepalived 2.2.7 on this machine, then
# the ratio table at the top of BENCHMARKS.md rewritten from what this run measured
# (contrib/bench/summarize.py; the sections below it say how each figure is taken).
#
#   make bench                       # all of them (about 45 minutes on 2 cores)
#   BENCHES="idle soak" contrib/bench/all.sh
#
# A benchmark that fails leaves its row "not measured in this run" and the run exits 1; the
# others still run. Each writes bench-out/NAME.json; this run's start time decides which of
# those files are this run's. Needs root and `make release` (make bench builds it).
set -uo pipefail
cd "$(dirname "$0")/../.."
BENCHES=${BENCHES:-"config-test failover idle soak status scrape-ipvs reload ipvs-apply tcpcheck httpget sslget jitter"}
mkdir -p bench-out
started=$(date +%s)
date -u '+%Y-%m-%d %H:%M UTC' >bench-out/run-started
failed=0
for bench in $BENCHES; do
    t0=$(date +%s)
    echo "== make bench: $bench ($(date -u +%H:%M:%S))"
    case $bench in
    config-test) contrib/bench/config-test.sh ;;
    failover) contrib/bench/failover.sh ;;
    idle) contrib/bench/idle.sh ;;
    soak) contrib/bench/soak.sh ;;
    status) contrib/bench/status.sh ;;
    scrape-ipvs) contrib/bench/scrape-ipvs.sh ;;
    reload) contrib/bench/reload.sh ;;
    ipvs-apply) contrib/bench/ipvs-apply.sh ;;
    tcpcheck) contrib/bench/tcpcheck-cpu.sh ;;
    httpget) CHECK=HTTP_GET contrib/bench/tcpcheck-cpu.sh ;;
    # Four rounds: a TLS check's CPU varies more between rounds than the others' under TCG.
    sslget) CHECK=SSL_GET ROUNDS=${ROUNDS:-4} contrib/bench/tcpcheck-cpu.sh ;;
    jitter) contrib/bench/jitter.sh ;;
    *) echo "make bench: unknown benchmark $bench" >&2; false ;;
    esac
    rc=$?
    echo "== make bench: $bench: exit $rc after $(($(date +%s) - t0)) s"
    [ "$rc" -eq 0 ] || failed=1
done
python3 contrib/bench/summarize.py --since "$started" --seconds $(($(date +%s) - started)) BENCHMARKS.md || failed=1
exit "$failed"
