#!/usr/bin/env bash
# Benchmark: CPU cost of TCP_CHECK health checking, keepalived 2.2.7 (Debian's, `-C`: parent +
# checker child) against Vigil (one process), on the same keepalived.conf: SERVICES virtual
# servers x REALS real servers, each real server with `TCP_CHECK { connect_timeout 1 }` at
# `delay_loop DELAY_LOOP`, i.e. SERVICES*REALS/DELAY_LOOP connect+close per second.
#
# One boot of the kernel lab (contrib/kernel-lab: QEMU TCG, 1 vCPU, Debian 12's 6.1 kernel with
# IPVS) runs contrib/bench/tcpcheck-cpu.guest.sh: the real servers are 10.30.0.1..REALS on a
# dummy interface, port 80, served by `benchtool acceptor` (contrib/bench/benchtool.c, epoll,
# accept and close at once; busybox has no persistent `nc -l -k` and its httpd forks per
# connection). The daemons run in turn, alternating, ROUNDS times each. Each run: once
# `ipvsadm -Ln` shows the whole table, WARMUP s, then over WINDOW s: user+sys ticks from
# /proc/PID/stat of the daemon and all its descendants, the acceptor's own ticks (reported
# separately), connections accepted (= checks done, so checks/s is observed, not assumed) and the
# guest's /proc/stat. The table must still be whole, every weight 1, at the end of the window (a
# failed check would remove a real server), and at least half the expected checks must be seen.
#
# Why DELAY_LOOP defaults to 10 and not 1: under TCG a loopback TCP connect+accept+close costs
# about 2.5 ms of guest CPU (kernel included), and the single vCPU saturates at ~700 checks/s
# (keepalived managed 530/s of the 2000/s that delay_loop 1 asks, with timers running late).
# At 200 checks/s the guest is about 60% busy, so both daemons keep their schedule and their CPU
# can be compared. Absolute figures are TCG figures; compare the ratio and the ms per check.
# The guest's clock follows the host's, so a loaded host inflates every figure (the host's load
# average is recorded); alternating the daemons spreads that over both.
# Writes bench-out/tcpcheck-cpu.json and prints a summary and a Markdown row for BENCHMARKS.md.
# The host steps it shares with ipvs-apply.sh (checks, benchtool, the work dir, the kernel-lab
# run, the BENCH-JSON line, the host's load) are in contrib/bench/kernel-lab-bench.sh.
#
# Environment: SERVICES (200), REALS (10), DELAY_LOOP (10), WARMUP (max(5, DELAY_LOOP) s),
# WINDOW (15 s), ROUNDS (2; medians reported), VIGIL_BIN_DIR (.build/release: vigil and vigild),
# REFERENCE_ONLY=1 (keepalived only), KERNEL_LAB_TIMEOUT (600), CC. Needs root, python3, a C
# compiler (gcc, else clang) and libc6-dev (static libc) for benchtool.c, and keepalived
# (Debian's 2.2.7: every library it needs comes through ldd, nothing is dlopen'ed).
set -euo pipefail
cd "$(dirname "$0")/../.."
# SSL_GET: 100 checks (10 x 10), 10 handshakes a second: under TCG a TLS 1.3 handshake costs the
# checker about 20 ms and the server 15, and the one vCPU runs both (50 a second saturated it).
SERVICES=${SERVICES:-$([ "${CHECK:-}" = SSL_GET ] && echo 10 || echo 200)}
REALS=${REALS:-10}
DELAY_LOOP=${DELAY_LOOP:-10}
WARMUP=${WARMUP:-$((DELAY_LOOP > 5 ? DELAY_LOOP : 5))}
WINDOW=${WINDOW:-15}
ROUNDS=${ROUNDS:-2}
CONNECT_TIMEOUT=1
# CHECK=HTTP_GET: the same with an HTTP_GET of / with its digest (benchtool answers a page);
# CHECK=SSL_GET: the same over TLS (contrib/bench/benchtls.c, a P-256 certificate).
CHECK=${CHECK:-TCP_CHECK}
case "$CHECK" in
TCP_CHECK) ACCEPTOR_MODE= ; NAME=tcpcheck-cpu ;;
HTTP_GET) ACCEPTOR_MODE=--http ; NAME=httpget-cpu ;;
SSL_GET) ACCEPTOR_MODE=--tls ; NAME=sslget-cpu ;;
*) echo "CHECK must be TCP_CHECK, HTTP_GET or SSL_GET" >&2; exit 2 ;;
esac
keepalived=/usr/sbin/keepalived
# shellcheck source=SCRIPTDIR/kernel-lab-bench.sh
. contrib/bench/kernel-lab-bench.sh
bench_init "$NAME"

bench_need_root
bench_find_cc
[ -x "$keepalived" ] || die "no $keepalived (apt-get install keepalived)"
[ "$REALS" -le 250 ] || die "REALS must be at most 250"
extra_bins=$keepalived
bench_need_vigil

bench_make_work tcpcheck
bench_build_benchtool
if [ "$CHECK" = SSL_GET ]; then
    # The TLS server (OpenSSL, static) and its P-256 certificate: SSL_GET's cost, not RSA's.
    "$cc" -O2 -static -o "$work/benchtls" contrib/bench/benchtls.c -lssl -lcrypto -ldl -pthread 2>/dev/null \
        || die "cannot build a static contrib/bench/benchtls.c (libssl-dev provides libssl.a)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench \
        -keyout "$work/bench-key.pem" -out "$work/bench-cert.pem" 2>/dev/null || die "openssl cannot make a certificate"
fi
bench_copy_to_guest contrib/bench/tcpcheck-cpu.guest.sh contrib/bench/guest-common.sh

python3 - "$work/tcpcheck-cpu.conf" "$CHECK" "$SERVICES" "$REALS" "$DELAY_LOOP" "$CONNECT_TIMEOUT" <<'PY'
import hashlib, sys
path, check = sys.argv[1], sys.argv[2]
services, reals, delay, timeout = map(int, sys.argv[3:])
digest = hashlib.md5(b"<html>ok</html>").hexdigest()
conf = ["global_defs {", "    router_id bench-tcpcheck-cpu", "}"]
for s in range(services):
    conf += [f"virtual_server 10.31.{s // 250}.{s % 250 + 1} 80 {{", f"    delay_loop {delay}",
             "    lb_algo rr", "    lb_kind NAT", "    protocol TCP"]
    for r in range(reals):
        body = ["            url {", "                path /", f"                digest {digest}", "            }"] if check in ("HTTP_GET", "SSL_GET") else []
        conf += [f"    real_server 10.30.0.{r + 1} 80 {{", "        weight 1", f"        {check} {{",
                 f"            connect_timeout {timeout}"] + body + ["        }", "    }"]
    conf.append("}")
open(path, "w").write("\n".join(conf) + "\n")
PY

# Both must accept the file, or the comparison means nothing.
"$keepalived" -t -f "$work/tcpcheck-cpu.conf" || die "keepalived -t rejects the generated configuration"
bench_check_vigil_conf "$work/tcpcheck-cpu.conf"
bench_write_env SERVICES REALS DELAY_LOOP CONNECT_TIMEOUT WARMUP WINDOW ROUNDS ACCEPTOR_MODE

echo "$NAME: $((SERVICES * REALS)) ${CHECK}s every $DELAY_LOOP s, in the kernel lab"
bench_run_guest "$work/tcpcheck-cpu.guest.sh"
bench_result_json
python3 - "$json" "$out/$NAME.json" "$CHECK" <<'PY'
import json, statistics, sys
data = json.loads(sys.argv[1])
check = sys.argv[3]
res = data["results"]
med = lambda xs: statistics.median(xs) if xs else None
# Per daemon, the median over its valid rounds.
summary = {}
for name, rounds in res.items():
    ok = [r for r in rounds if r["valid"]]
    summary[name] = {"valid_rounds": len(ok), "rounds": len(rounds)}
    for key in ("cpu_percent", "checks_per_s", "cpu_ms_per_check", "acceptor_cpu_percent",
                "acceptor_cpu_ms_per_check", "guest_busy_percent"):
        m = med([r[key] for r in ok])
        summary[name][key] = None if m is None else round(m, 3)
data["summary"] = summary
k, v = summary.get("keepalived"), summary.get("vigil")
if k and v and k["valid_rounds"] and v["valid_rounds"]:
    data["ratio_vigil_over_keepalived_cpu"] = round(v["cpu_percent"] / k["cpu_percent"], 4)
    data["ratio_vigil_over_keepalived_cpu_per_check"] = round(v["cpu_ms_per_check"] / k["cpu_ms_per_check"], 4)
json.dump(data, open(sys.argv[2], "w"), indent=1)
print(f"\n{check}: wrote {sys.argv[2]}")
print(f"{data['checks']} {check}s every {data['delay_loop']} s, {data['rounds']} rounds of {data['window_s']} s "
      f"(guest busy with nothing running: {data['guest_idle_busy_percent']} %; host load "
      f"{data['host']['loadavg_before']} -> {data['host']['loadavg_after']})")
for name, rounds in res.items():
    for i, r in enumerate(rounds, 1):
        print(f"{name:>10} #{i}: CPU {r['cpu_percent']:.1f} % ({r['processes']} processes, user {r['user_ticks']} "
              f"sys {r['sys_ticks']} ticks), {r['checks_per_s']:.0f} checks/s of {r['expected_checks_per_s']:.0f}, "
              f"{r['cpu_ms_per_check']:.2f} ms CPU/check; listener {r['acceptor_cpu_percent']:.1f} %; "
              f"guest busy {r['guest_busy_percent']:.0f} %" + ("" if r["valid"] else "  ** NOT VALID **"))
if "ratio_vigil_over_keepalived_cpu" in data:
    print(f"median CPU: keepalived {k['cpu_percent']:.1f} %, vigil {v['cpu_percent']:.1f} %; "
          f"vigil/keepalived {data['ratio_vigil_over_keepalived_cpu']:.3f} "
          f"(per check {data['ratio_vigil_over_keepalived_cpu_per_check']:.3f})")
    print(f"| {data['checks']} {check}s every {data['delay_loop']} s (TCG guest, median of {min(k['valid_rounds'], v['valid_rounds'])} x {data['window_s']} s) "
          f"| keepalived {k['cpu_percent']:.1f} % CPU, {k['checks_per_s']:.0f} checks/s | vigil "
          f"{v['cpu_percent']:.1f} % CPU, {v['checks_per_s']:.0f} checks/s | vigil/keepalived "
          f"{data['ratio_vigil_over_keepalived_cpu']:.2f} |")
elif "vigil" in res or data.get("vigil_error"):
    print("no ratio: no valid vigil run (see above)")
PY
bench_exit_status
