#!/usr/bin/env python3
"""Draws a loadgen timeline (CSV, one row per second) as a PNG beside it:
delivery latency, throughput and client connections, and — when the run was
given the server pids — server memory and CPU, over time. With --k6, draws
k6's raw CSV output (--out csv=FILE.gz) instead: requests per second by
outcome and their latency, per second.

    python3 loadtest/plot.py RUN.csv [--title TEXT] [--span "LABEL=UNIX_FROM:UNIX_UNTIL"]...
    python3 loadtest/plot.py --k6 K6.csv.gz --output OUT.png [--title TEXT]

Needs matplotlib (pip install matplotlib).
"""
import argparse
import csv
import gzip
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def column(rows, name):
    values = []
    for row in rows:
        raw = row.get(name, "")
        values.append(float(raw) if raw not in ("", None) else float("nan"))
    return values


def quantile(values, q):
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def plot_k6(path, output, title):
    seconds = {}
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as source:
        for row in csv.DictReader(source):
            if row["metric_name"] != "http_req_duration" or row.get("scenario") in ("", "setup"):
                continue
            second = seconds.setdefault(int(float(row["timestamp"])), {"ms": [], "ok": 0, "503": 0, "other": 0})
            status = row.get("status", "")
            if status.startswith("2"):
                second["ok"] += 1
                second["ms"].append(float(row["metric_value"]))
            elif status == "503":
                second["503"] += 1
            else:
                second["other"] += 1
    if not seconds:
        sys.exit(f"{path}: no requests")
    start = min(seconds)
    t = [second - start for second in sorted(seconds)]
    rows = [seconds[second] for second in sorted(seconds)]
    for row in rows:
        row["ms"].sort()
    figure, (latency, rate) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        latency.plot(t, [quantile(row["ms"], q) for row in rows], label=label)
    latency.axhline(200, color="red", linewidth=0.8, linestyle="--", label="200 ms target")
    latency.set_ylabel("latency of served requests (ms)")
    latency.set_yscale("log")
    latency.legend(loc="upper right", fontsize=8)
    rate.plot(t, [row["ok"] for row in rows], label="served (2xx)/s", color="tab:green")
    rate.plot(t, [row["503"] for row in rows], label="shed (503)/s", color="tab:orange")
    rate.plot(t, [row["other"] for row in rows], label="other errors/s", color="tab:red")
    rate.set_ylabel("requests/s")
    rate.legend(loc="upper right", fontsize=8)
    for axis in (latency, rate):
        axis.grid(alpha=0.3)
    rate.set_xlabel("seconds")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    print(f"plot written to {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", nargs="?")
    parser.add_argument("--k6", help="k6 CSV output (plain or .gz) to draw instead")
    parser.add_argument("--title", default="")
    parser.add_argument("--output")
    parser.add_argument("--span", action="append", default=[],
                        help="LABEL=FROM:UNTIL in Unix seconds, shaded on every panel")
    args = parser.parse_args()
    if args.k6:
        plot_k6(args.k6, args.output or args.k6.split(".csv")[0] + ".png", args.title)
        return
    if not args.timeline:
        parser.error("a timeline CSV, or --k6")

    with open(args.timeline) as source:
        rows = list(csv.DictReader(source))
    if not rows:
        sys.exit(f"{args.timeline}: no rows")
    t = column(rows, "t_s")
    unix = column(rows, "unix_s") if "unix_s" in rows[0] else None
    offset = unix[0] - t[0] if unix else None
    has_server = any(v > 0 for v in column(rows, "server_rss_mib"))

    panels = 4 if has_server else 3
    figure, axes = plt.subplots(panels, 1, figsize=(10, 2.6 * panels), sharex=True)
    latency, throughput, clients = axes[0], axes[1], axes[2]
    for quantile, style in (("p50", "-"), ("p95", "-"), ("p99", ":")):
        latency.plot(t, column(rows, f"delivery_{quantile}_ms"), style, label=quantile)
    latency.set_ylabel("delivery latency (ms)")
    latency.axhline(100, color="red", linewidth=0.8, linestyle="--", label="100 ms target")
    latency.legend(loc="upper right", fontsize=8)

    throughput.plot(t, column(rows, "deliveries_per_s"), label="deliveries/s")
    throughput.set_ylabel("deliveries/s")
    writes = throughput.twinx()
    writes.plot(t, column(rows, "writes_per_s"), color="tab:green", label="writes/s")
    writes.plot(t, column(rows, "write_errors_per_s"), color="tab:red", label="write errors/s")
    writes.set_ylabel("writes/s")
    writes.legend(loc="upper right", fontsize=8)

    clients.plot(t, column(rows, "clients"), color="tab:purple")
    clients.set_ylabel("clients connected")

    if has_server:
        server = axes[3]
        server.plot(t, column(rows, "server_rss_mib"), color="tab:brown", label="RSS (MiB)")
        server.set_ylabel("server RSS (MiB)")
        cpu = server.twinx()
        cpu.plot(t, column(rows, "server_cpu_percent"), color="tab:orange", label="CPU %")
        cpu.set_ylabel("server CPU (%)")

    for span in args.span if offset is not None else []:
        label, _, interval = span.partition("=")
        start, _, end = interval.partition(":")
        for axis in axes:
            axis.axvspan(float(start) - offset, float(end) - offset, color="grey", alpha=0.2)
        axes[0].text(float(start) - offset, axes[0].get_ylim()[1] * 0.9, f" {label}", fontsize=8)

    for axis in axes:
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds")
    if args.title:
        figure.suptitle(args.title)
    figure.tight_layout()
    output = args.output or args.timeline.rsplit(".", 1)[0] + ".png"
    figure.savefig(output, dpi=100)
    print(f"plot written to {output}")


if __name__ == "__main__":
    main()
