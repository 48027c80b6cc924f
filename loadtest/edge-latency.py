#!/usr/bin/env python3
"""API latency as the edge saw it: p50/p95/p99 of nginx's request_time (first
byte from the client to last byte sent back) per kind of request, from the
edge's JSON access log, for requests logged after a given Unix time. This is
the server side of the measurement, free of the load generator's own delays.

    python3 loadtest/edge-latency.py ACCESS_LOG SINCE_UNIX [--json OUT]
"""
import argparse
import datetime
import json
import re


def kind(entry):
    uri, method = entry["uri"], entry["method"]
    if not uri.startswith("/api/v1/projects/"):
        return None
    if method == "PATCH":
        return "patch"
    if method != "GET":
        return None
    if uri.split("?")[0].endswith("/tasks/next"):
        return "next"
    if re.search(r"/tasks/\d+$", uri.split("?")[0]):
        return "task"
    if uri.split("?")[0].endswith("/tasks"):
        return "list"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("since", type=float)
    parser.add_argument("--json")
    args = parser.parse_args()
    times = {}
    statuses = {}
    with open(args.log) as log:
        for line in log:
            entry = json.loads(line)
            if datetime.datetime.fromisoformat(entry["time"]).timestamp() < args.since:
                continue
            name = kind(entry)
            if name is None:
                continue
            times.setdefault(name, []).append(float(entry["request_time"]) * 1000)
            statuses.setdefault(name, {}).setdefault(str(entry["status"]), 0)
            statuses[name][str(entry["status"])] += 1
    summary = {}
    print("API latency at the edge (ms):")
    for name in ["task", "list", "next", "patch"]:
        values = sorted(times.get(name, []))
        if not values:
            continue
        at = lambda q: values[min(len(values) - 1, int(len(values) * q))]
        summary[name] = {"count": len(values), "p50_ms": at(0.5), "p95_ms": at(0.95),
                         "p99_ms": at(0.99), "max_ms": values[-1], "statuses": statuses[name]}
        print(f"  {name:>5}: {len(values):>6} requests  p50 {at(0.5):6.1f}  p95 {at(0.95):6.1f}  "
              f"p99 {at(0.99):6.1f}  max {values[-1]:7.1f}  statuses {statuses[name]}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
