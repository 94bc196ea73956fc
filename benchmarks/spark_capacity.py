#!/usr/bin/env python3
"""What the Spark engine costs per line and per customer, and the capacity that implies (issue 20).

    .venv/bin/python benchmarks/spark_capacity.py                      # 20k, 2M and 10M lines
    .venv/bin/python benchmarks/spark_capacity.py --one FILE           # one measurement, as JSON

Each file is reduced in a fresh child process (``--one``): a local session on ``--master``, then
``segkit.engines.spark.reduce`` timed from the first job to the customer table on the driver.
The child records every Arrow table the driver collects (``engines.spark._arrow``): the largest
one is the driver's peak collected bytes, their sum what crossed from Spark to Python. The three
runs give the fixed cost and the cost per line (a least-squares line through the reduce times),
which the capacity table scales to 100M, 1B and 10B lines, assuming the cores of a cluster share
the lines as the local cores do; the driver's part scales with the customers (the collected
customer table, and ~1 KB a customer for the steps after it: benchmarks/model_scaling.py). The
results go to benchmarks/spark-capacity.md. ``--render FILE.json`` rewrites that from saved runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, log, python_exe
from inputs import generate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "spark-capacity.md"
RUNS = ((20_000, 200, "spark_20k_200.csv"), (2_000_000, 2_000, "spark_2m_2000.csv"),
        (10_000_000, 100_000, "orders_10m.csv"))  # the last is run.py's 10M file (same generator)
SCALE = ((100_000_000, 1_000_000), (1_000_000_000, 3_000_000), (10_000_000_000, 10_000_000))
# the driver's steps after the engine (benchmarks/model_scaling.py, docs/large-data.md): ~1 KB and ~6 µs a customer
DRIVER_BYTES_PER_CUSTOMER = 1024
DRIVER_SECONDS_PER_CUSTOMER = 6e-6


def one(path: Path, master: str) -> dict[str, float]:
    """Reduce ``path`` once in this process and report time, lines, customers and collected bytes."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from segkit.config import load
    from segkit.engines import spark

    collected: list[int] = []
    arrow = spark._arrow

    def counted(frame):  # type: ignore[no-untyped-def]
        out = arrow(frame)
        collected.append(out.estimated_size())
        return out

    spark._arrow = counted
    session = spark.get_session(master)
    t0 = time.perf_counter()
    reduced = spark.reduce(str(path), load(), session=session)
    wall = time.perf_counter() - t0
    q = reduced.quality()
    return {"seconds": wall, "lines": q.counts["rows_read"], "customers": reduced.base.height,
            "peak_collected": max(collected), "collected": sum(collected),
            "driver_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def fit(runs: list[dict[str, float]]) -> tuple[float, float]:
    """(fixed seconds, seconds per line) by least squares over the runs. The runs' customers grow
    with their lines, so a cost per customer cannot be told apart here: the driver's cost per
    customer comes from benchmarks/model_scaling.py instead."""
    import numpy as np

    a = np.array([[1.0, r["lines"]] for r in runs])
    b = np.array([r["seconds"] for r in runs])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(coef[0]), float(coef[1])


def table(runs: list[dict[str, float]], master: str, cores: int) -> str:
    fixed, per_line = fit(runs)
    widest = max(runs, key=lambda r: r["customers"])
    per_cust_bytes = widest["peak_collected"] / widest["customers"]
    head = ("| lines | customers | reduce (s) | largest table collected | all collected | Python driver's peak RSS |\n"
            "|---:|---:|---:|---:|---:|---:|\n")
    rows = "".join(f"| {r['lines']:,} | {r['customers']:,} | {r['seconds']:.1f} | {r['peak_collected'] / 2**20:.2f} MiB "
                   f"| {r['collected'] / 2**20:.2f} MiB | {r['driver_rss'] / 2**20:.0f} MiB |\n" for r in runs)
    fitted = (f"\nFitted on these runs ({master}, {cores} cores): {fixed:.1f} s fixed and {per_line * 1e6:.2f} µs "
              f"of wall time per line, i.e. {per_line * cores * 1e6:.1f} core-µs per line; the largest table the "
              f"driver collects is the customer table, {per_cust_bytes:.0f} bytes a customer as Arrow.\n\n")
    cap_head = ("| lines | customers | Spark core-hours | minutes on 64 cores | minutes on 512 cores | driver collects "
                f"| driver memory (~{DRIVER_BYTES_PER_CUSTOMER} B a customer) | driver's model steps "
                f"(~{DRIVER_SECONDS_PER_CUSTOMER * 1e6:.0f} µs a customer) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    cap = ""
    for lines, customers in SCALE:
        core_s = per_line * lines * cores
        cap += (f"| {lines:,} | {customers:,} | {core_s / 3600:,.1f} | {(core_s / 64 + fixed) / 60:,.1f} | "
                f"{(core_s / 512 + fixed) / 60:,.1f} | {per_cust_bytes * customers / 2**20:,.0f} MiB | "
                f"{DRIVER_BYTES_PER_CUSTOMER * customers / 2**30:,.1f} GiB | "
                f"{DRIVER_SECONDS_PER_CUSTOMER * customers:,.0f} s |\n")
    return head + rows + fitted + cap_head + cap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", type=Path, help="measure one file in this process, print JSON")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--render", type=Path, help="write the results from runs saved as JSON")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.master)))
        return 0
    runs = json.loads(args.render.read_text()) if args.render else measure_all(args.master)
    if runs is None:
        return 1
    cores = int(args.master[len("local["):-1]) if args.master.startswith("local[") else 1
    text = (f"`benchmarks/spark_capacity.py` on {time.strftime('%Y-%m-%d')}: `engines.spark.reduce` in a fresh "
            f"process per file (session start not timed), `{args.master}`, with "
            "`spark.driver.maxResultSize=8m`.\n\n" + table(runs, args.master, cores))
    RESULTS.write_text(text, encoding="utf-8")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "spark-capacity.json").write_text(json.dumps(runs, indent=1), encoding="utf-8")
    print(text)
    return 0


def measure_all(master: str) -> list[dict[str, float]] | None:
    os.environ["PYSPARK_SUBMIT_ARGS"] = "--conf spark.driver.maxResultSize=8m pyspark-shell"
    runs = []
    for rows, customers, name in RUNS:
        path = DATA / name
        generate(path, rows, customers, extra=("--no-cost",))
        proc = subprocess.run([python_exe(), __file__, "--one", str(path), "--master", master],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            log(f"{path.name}: exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            return None
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        log(f"  {path.name}: {runs[-1]['seconds']:.1f} s")
    return runs


if __name__ == "__main__":
    sys.exit(main())
