#!/usr/bin/env python3
"""Draws a loadgen timeline (CSV, one row per second) as a PNG beside it:
delivery latency, throughput and client connections, and — when the run was
given the server pids — server memory and CPU, over time.

    python3 loadtest/plot.py RUN.csv [--title TEXT] [--span "LABEL=UNIX_FROM:UNIX_UNTIL"]...

Needs matplotlib (pip install matplotlib).
"""
import argparse
import csv
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline")
    parser.add_argument("--title", default="")
    parser.add_argument("--output")
    parser.add_argument("--span", action="append", default=[],
                        help="LABEL=FROM:UNTIL in Unix seconds, shaded on every panel")
    args = parser.parse_args()

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
