#!/usr/bin/env python3
"""The ratio table at the top of BENCHMARKS.md, from one `make bench` run (bench-out/*.json).

Every row is Vigil against keepalived 2.2.7 measured in the same run (or, for the IPVS apply,
against ipvsadm -R, the tool keepalived users restore rule sets with). Ratio = Vigil / reference,
lower is better. A file older than the run (--since) is not this run's: its row says so instead
of quoting an old figure. Replaces what lies between the two markers, or inserts them after the
title.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"


def load(name, since):
    path = os.path.join("bench-out", name + ".json")
    if not os.path.exists(path) or os.path.getmtime(path) < since:
        return None
    with open(path) as f:
        return json.load(f)


def fmt(value, unit="", digits=2):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def ratio(v, k):
    return None if v is None or k in (None, 0) else v / k


def row(rows, what, k, v, r, target, met):
    verdict = "—" if met is None else ("**met**" if met else "**not met**")
    rows.append(f"| {what} | {k} | {v} | {fmt(r)} | {target} | {verdict} |")


def missing(rows, what, target):
    rows.append(f"| {what} | not measured in this run | | | {target} | — |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--since", type=float, default=0)
    p.add_argument("--seconds", type=int, default=0)
    p.add_argument("--note", default="", help="a sentence added to the header (a row measured apart, say)")
    p.add_argument("file")
    a = p.parse_args()
    rows = []
    med = statistics.median

    c = load("config-test", a.since)
    if c:
        k, v = c["median"]["keepalived"] * 1000, c["median"]["vigil"] * 1000
        row(rows, f"`-t` on 500 VS × 8 RS + 50 instances (median of {c['runs']})", fmt(k, " ms", 1), fmt(v, " ms", 1), ratio(v, k), "≤ 0.5", v / k <= 0.5)
    else:
        missing(rows, "`-t` on 500 VS × 8 RS + 50 instances", "≤ 0.5")

    f = load("failover", a.since)
    for mode, label in (("kill", "failover after SIGKILL: excess over the RFC bound"), ("stop", "failover after SIGTERM: excess over the skew time")):
        if f:
            k, v = med(f["keepalived"][mode]["over_ms"]), med(f["vigil"][mode]["over_ms"])
            n = len(f["vigil"][mode]["over_ms"])
            row(rows, f"{label} (median of {n})", fmt(k, " ms"), fmt(v, " ms"), ratio(v, k), "≤ 1", v <= k)
        else:
            missing(rows, label, "≤ 1")

    i = load("idle", a.since)
    for count in (1, 255):
        key = f"instances_{count}"
        label = f"idle, {count} instance{'s' if count > 1 else ''} MASTER"
        if i and key in i:
            k, v = i[key]["keepalived"], i[key]["vigil"]
            row(rows, f"{label}: RSS, every process", fmt(k["rss_mb_median"], " MB"), fmt(v["rss_mb_median"], " MB"),
                ratio(v["rss_mb_median"], k["rss_mb_median"]), "≤ 1 and ≤ 8 MB", v["rss_mb_median"] <= min(8, k["rss_mb_median"]))
            row(rows, f"{label}: CPU over {i['window_s']} s", fmt(k["cpu_percent_median"], " %", 4), fmt(v["cpu_percent_median"], " %", 4),
                ratio(v["cpu_percent_median"], k["cpu_percent_median"]), "≤ 1", v["cpu_percent_median"] <= k["cpu_percent_median"])
        else:
            missing(rows, f"{label}: RSS and CPU", "≤ 1")

    s = load("soak", a.since)
    if s:
        k, v = s["keepalived"]["false_failovers"], s["vigil"]["false_failovers"]
        row(rows, f"false failovers, VRRPv3 advert_int 0.05 s, every core busy, {s['soak_s']} s", str(k), str(v), None, "0", v == 0)
    else:
        missing(rows, "false failovers, VRRPv3 advert_int 0.05 s under load", "0")

    st = load("status", a.since)
    if st:
        m = st["memory_mb"]
        row(rows, "idle RSS, lvs02.conf backup, control socket and `/metrics` on (keepalived + a minimal exporter)",
            fmt(m["keepalived_plus_exporter"], " MB"), fmt(m["vigil"], " MB"), ratio(m["vigil"], m["keepalived_plus_exporter"]), "≤ 8 MB", m["vigil"] <= 8)
        sc = st["scrape"]
        row(rows, "CPU of one scrape, 50 instances + 1,000 real servers, no IPVS here",
            fmt(sc["keepalived"]["cpu_ms"], " ms", 3), fmt(sc["vigil"]["cpu_ms"], " ms", 3), ratio(sc["vigil"]["cpu_ms"], sc["keepalived"]["cpu_ms"]), "< 1 ms", sc["vigil"]["cpu_ms"] < 1)
    else:
        missing(rows, "memory with metrics on, CPU of a scrape", "≤ 8 MB, < 1 ms")

    si = load("scrape-ipvs", a.since)
    if si and si.get("summary"):
        x = si["summary"]
        row(rows, "CPU of one scrape with IPVS's counters, 50 instances + 1,000 real servers (TCG guest; reference: "
            "`ipvsadm -Ln --stats --exact` reading the same table, its exec included; host estimate by this run's "
            f"guest/host factor {1 / x['tcg_factor']:.0f} of the scrape without IPVS)",
            fmt(x["guest_ipvsadm_ms"], " ms", 1), f"{fmt(x['guest_full_ms'], ' ms', 1)} (host estimate {fmt(x['host_estimate_full_ms'], ' ms', 2)})",
            ratio(x["guest_full_ms"], x["guest_ipvsadm_ms"]), "< 1 ms", x["host_estimate_full_ms"] < 1)
    else:
        missing(rows, "CPU of one scrape with IPVS's counters (TCG guest)", "< 1 ms")

    r = load("reload", a.since)
    if r and "summary" in r and "vigil" in r["summary"]:
        k, v = r["summary"]["keepalived"], r["summary"]["vigil"]
        row(rows, "SIGHUP of an unchanged 500 × 8 file → done (TCG guest)", fmt(k["unchanged_ms"], " ms", 0), fmt(v["unchanged_ms"], " ms", 0),
            ratio(v["unchanged_ms"], k["unchanged_ms"]), "≤ 1", v["unchanged_ms"] <= k["unchanged_ms"])
        row(rows, "IPVS requests for that unchanged file", str(k["unchanged_genl_messages"]), str(v["unchanged_genl_messages"]), None, "0", v["unchanged_genl_messages"] == 0)
        row(rows, "SIGHUP adding one virtual server → in the kernel's table", fmt(k["added_service_in_table_ms"], " ms", 0), fmt(v["added_service_in_table_ms"], " ms", 0),
            ratio(v["added_service_in_table_ms"], k["added_service_in_table_ms"]), "≤ 1", v["added_service_in_table_ms"] <= k["added_service_in_table_ms"])
    else:
        missing(rows, "reload of the 500 × 8 file", "≤ 1")

    ip = load("ipvs-apply", a.since)
    if ip and "median_ms" in ip.get("vigil", {}):
        k, v = ip["ipvsadm_restore"]["median_ms"], ip["vigil"]["median_ms"]
        row(rows, f"IPVS: install {ip['services']:,} services × {ip['reals']} real servers (TCG guest; reference `ipvsadm -R`)", fmt(k, " ms", 0), fmt(v, " ms", 0), ratio(v, k), "≤ 1", v <= k)
    else:
        missing(rows, "IPVS: install 1,000 services × 10 real servers", "≤ 1")

    for name, label, target, limit in (("tcpcheck-cpu", "TCP_CHECK", "≤ 0.5", 0.5), ("httpget-cpu", "HTTP_GET", "≤ 1", 1.0), ("sslget-cpu", "SSL_GET", "≤ 1", 1.0)):
        t = load(name, a.since)
        if t and "ratio_vigil_over_keepalived_cpu_per_check" in t:
            k, v = t["summary"]["keepalived"], t["summary"]["vigil"]
            rr = t["ratio_vigil_over_keepalived_cpu_per_check"]
            row(rows, f"CPU per {label}, {t['checks']:,} checks every {t['delay_loop']} s (TCG guest)", fmt(k["cpu_ms_per_check"], " ms", 3), fmt(v["cpu_ms_per_check"], " ms", 3), rr, target, rr <= limit)
        else:
            missing(rows, f"CPU per {label}", target)

    j = load("jitter", a.since)
    for load_name, label in (("idle", "advert jitter, one MASTER instance alone"), ("checks", "advert jitter with the checkers running")):
        if j and f"vigil-{load_name}" in j.get("summary", {}) and f"keepalived-{load_name}" in j["summary"]:
            k, v = j["summary"][f"keepalived-{load_name}"], j["summary"][f"vigil-{load_name}"]
            what = f"{label}" + (f" ({j['checks']:,} HTTP_GETs every {j['delay_loop']} s)" if load_name == "checks" else "") + ": p99 of the interval's distance from 1 s (TCG guest)"
            row(rows, what, fmt(k["p99_us"] / 1000, " ms", 3), fmt(v["p99_us"] / 1000, " ms", 3), ratio(v["p99_us"], k["p99_us"]), "< 1 ms", v["p99_us"] < 1000)
        else:
            missing(rows, label, "< 1 ms")

    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    started = open("bench-out/run-started").read().strip() if os.path.exists("bench-out/run-started") else "?"
    measured = sum(1 for x in rows if "not measured" not in x)
    met = sum(1 for x in rows if "**met**" in x)
    unmet = sum(1 for x in rows if "**not met**" in x)
    block = [BEGIN,
             f"One `make bench` run, started {started} ({a.seconds // 60} min), on commit {commit}, {os.cpu_count()} cores, "
             f"Linux {platform.release()}, keepalived {keepalived_version()}. Ratio = Vigil / reference, lower is better; "
             f"{measured} rows measured, {met} targets met, {unmet} not. The sections below say how each figure is taken and "
             "what moved it; their tables are earlier runs." + (" " + a.note if a.note else ""),
             "",
             "| benchmark | keepalived 2.2.7 (reference) | Vigil | ratio | target | |",
             "|---|---|---|---|---|---|"] + rows + [END]
    text = open(a.file).read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(block) + rest.split(END, 1)[1]
    else:
        title, _, body = text.partition("\n")
        text = title + "\n\n" + "\n".join(block) + "\n" + body
    open(a.file, "w").write(text)
    print("\n".join(block))
    return 0


def keepalived_version():
    try:
        out = subprocess.run(["keepalived", "--version"], capture_output=True, text=True)
        line = (out.stdout + out.stderr).splitlines()[0]
        return line.split()[1] if len(line.split()) > 1 else line
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
