#!/usr/bin/env python3
"""segkit's Spark engine against a plain PySpark aggregation of the same file (SPEC §8, issue 20).

    .venv/bin/python benchmarks/spark_ratio.py                       # 2M lines, 2,000 customers
    .venv/bin/python benchmarks/spark_ratio.py --rows 10m --customers 100000 --repeat 1
    .venv/bin/python benchmarks/spark_ratio.py FILE.csv --master local[2] --repeat 3

Whole processes, same session kind: ``segkit segment FILE --engine spark --spark-master M
--no-report`` and ``benchmarks/spark_plain.py FILE OUT --master M`` (read the CSV, group by
customer: latest date, distinct orders, summed amount, write the result), each in a fresh child
from spawn to exit, repetitions interleaved, medians reported. Both run with the driver's result
limit ``spark.driver.maxResultSize`` (default 8m, ``--max-result-size``) in
``PYSPARK_SUBMIT_ARGS``: segkit must bring back per-customer rows and small aggregates only.
The generated input (``segkit sample --no-cost``: the spark engine does not read costs) goes to
benchmarks/data/ and is reused. The row is kept in benchmarks/spark-ratio.md (one per file),
which benchmarks/report.py appends to BENCHMARKS.md under "Spark engine".
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from common import DATA, keep_row, label, log, parse_size, python_exe, segkit_cmd, total_ram
from harness import measure
from inputs import generate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "spark-ratio.md"
HEADER = ("| file | lines | customers | master | runs | plain PySpark (s) | segkit segment --engine spark (s) | ratio "
          "| maxResultSize | others' load |\n|---|---:|---:|---|---:|---:|---:|---:|---|---:|\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, help="a CSV (default: generated, see --rows)")
    ap.add_argument("--rows", type=parse_size, default=2_000_000)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-result-size", default="8m")
    ap.add_argument("--idle-wait", type=float, default=120.0)
    ap.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args(argv)
    path = args.file or DATA / f"spark_{label(args.rows)}_{args.customers}.csv"
    if args.file is None:
        generate(path, args.rows, args.customers, extra=("--no-cost",))
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--conf spark.driver.maxResultSize={args.max_result_size} pyspark-shell"
    out = DATA / "out"
    cmds = {
        "plain": [python_exe(), str(HERE / "spark_plain.py"), str(path), str(out / "spark_plain"), "--master", args.master],
        "segkit": [*segkit_cmd(), "segment", str(path), "--engine", "spark", "--spark-master", args.master,
                   "--no-report", "-q", "-o", str(out / "spark_segment")],
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    load = 0.0
    for i in range(args.repeat):
        for key, cmd in cmds.items():
            shutil.rmtree(out / f"spark_{'plain' if key == 'plain' else 'segment'}", ignore_errors=True)
            run = measure(cmd, timeout=args.timeout, mem_limit=int(total_ram() * 0.75), idle_wait=args.idle_wait)
            if not run.ok:
                log(f"{key} failed ({run.killed or f'exit {run.rc}'}): {run.stderr.strip()[-500:]}")
                return 1
            log(f"  {key} run {i + 1}: {run.wall:.1f} s (others' load {run.others_during or 0:.0%})")
            walls[key].append(run.wall)
            load = max(load, run.others_during or 0.0)
    plain, seg = (statistics.median(walls[k]) for k in ("plain", "segkit"))
    lines = sum(1 for _ in path.open("rb")) - 1
    row = (f"| {path.name} | {lines:,} | {args.customers:,} | {args.master} | {args.repeat} | {plain:.1f} | {seg:.1f} | "
           f"{seg / plain:.2f}x | {args.max_result_size} | {load:.0%} |")
    print(HEADER + row)
    save(path.name, row)
    return 0


def save(name: str, row: str) -> None:
    """Keep one row per input file in RESULTS, the others and any text after the table as they were."""
    note = (f"`benchmarks/spark_ratio.py` on {time.strftime('%Y-%m-%d')} (medians of each row's runs): whole "
            "processes from spawn to exit, the same local session kind, both with the driver's result limit "
            "in `PYSPARK_SUBMIT_ARGS`: `segkit segment FILE --engine spark --no-report` against "
            "`benchmarks/spark_plain.py` (read the CSV, group by customer: latest date, distinct orders, summed "
            "amount, write the result). Target (SPEC §8): at most 3x.\n\n")
    keep_row(RESULTS, note, HEADER, name, row)


if __name__ == "__main__":
    sys.exit(main())
