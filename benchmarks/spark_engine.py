#!/usr/bin/env python3
"""Spark engine vs polars engine on the same file: the customer table and data-quality counts.

    .venv/bin/python benchmarks/spark_engine.py benchmarks/data/orders_2m.csv [--master local[2]]

The row is also kept in benchmarks/spark-results.md (one row per file name, replaced on a new
run), which benchmarks/report.py appends to BENCHMARKS.md under "Spark engine".

Each engine runs in a fresh child process (one after the other, never at once); the Spark child
reports the session start separately from the job. Printed as a Markdown table row; the inputs
are ``segkit sample`` files under benchmarks/data/ (git-ignored). Both engines must return the
same customer table, which the script checks (same rows and values, in micro-units).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import keep_row

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from segkit import config
cfg = config.load(None, use_env=False)
engine, path, master = sys.argv[1], sys.argv[2], sys.argv[3]
from segkit.engines import customer_table
if engine == "spark":
    from segkit.engines.spark import local_session
    session = local_session(master, {"spark.driver.memory": "8g"})
    session.range(1).count()
t1 = time.perf_counter()
base, _ = customer_table(path, cfg, engine)
t2 = time.perf_counter()
base.sort("customer_id").write_parquet(sys.argv[4])
print(json.dumps({"start": t1 - t0, "job": t2 - t1, "customers": base.height}))
"""


def measure(engine: str, path: Path, master: str, out: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, engine, str(path), master, str(out)],
                          capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - t
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    import polars as pl

    with tempfile.TemporaryDirectory(prefix="segkit-spark-bench-") as tmp:  # private: runs may overlap
        outs = {e: Path(tmp) / f"{e}.parquet" for e in ("polars", "spark")}
        res = {e: measure(e, args.file, args.master, outs[e]) for e in ("polars", "spark")}
        same = pl.read_parquet(outs["polars"]).equals(pl.read_parquet(outs["spark"]))
    lines = sum(1 for _ in args.file.open("rb")) - 1
    p, s = res["polars"], res["spark"]
    row = (f"| {args.file.name} | {lines:,} | {p['customers']:,} | {p['job']:.1f} | {s['start']:.1f} | "
           f"{s['job']:.1f} | {s['job'] / p['job']:.1f}x | {'yes' if same else 'NO'} |")
    print(HEADER + row)
    save(args.file.name, row, args.master)


HEADER = ("| file | lines | customers | polars engine (s) | Spark session start (s) | Spark job (s) "
          "| job ratio | same table |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
RESULTS = Path(__file__).resolve().parent / "spark-results.md"


def save(name: str, row: str, master: str) -> None:
    """Keep one row per input file in RESULTS, the others and any text after the table as they were."""
    note = (f"`benchmarks/spark_engine.py FILE --master {master}` on {time.strftime('%Y-%m-%d')}: each "
            "engine in a fresh child process, one run each; the Spark session start (JVM and session) is "
            "timed apart from the job (`segkit.engines.customer_table`: read, data-quality counts, "
            "customer table). Both engines' customer tables are compared value by value.\n\n")
    keep_row(RESULTS, note, HEADER, name, row)


if __name__ == "__main__":
    main()
