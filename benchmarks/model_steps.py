"""Wall and CPU time of every model step of `segkit segment` at 100,000 customers (SPEC §8).

Usage: python benchmarks/model_steps.py [--customers 100000] [--rows 1000000] [--repeat 3] [--k auto]

Generates synthetic order lines with ``segkit.sample.generate`` (the generator behind
``segkit sample``) and builds the customer table as ``segkit segment`` does; then runs the three
model steps of ``segkit.pipeline`` on it, ``--repeat`` times each, in the pipeline's order:

- ``cluster``: auto-k (candidates on the silhouette sample, their silhouettes) and the refit on
  every customer (``pipeline.add_clusters``);
- ``clv``: the counting model + Gamma-Gamma fit and every customer's predictions (``add_clv``);
- ``validate``: both one-population nulls, stability and the descriptive statistics
  (``add_validation``), with the nulls (``evidence_for``) and stability also timed alone;
- ``together``: the three as ``segkit segment`` runs them (``pipeline.add_models``: the nulls'
  tests run beside k-means and the CLV fit). This is the figure compared with the target.

SPEC §8: all model steps together at most 1.5 s at 100,000 customers on 2 cores. Reports the
median of the repetitions (wall and CPU; CPU is steadier on a shared machine), prints a table to
stderr and one line of JSON to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET_S = 1.5


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``repeat`` calls, and the last call's result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = call()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", default="auto", help="clusters: auto (as segment does) or a number, e.g. 8 for the dearest case")
    args = ap.parse_args()

    from segkit import config, pipeline, sample
    from segkit.models import kmeans, nulls  # noqa: F401  (imported before the timing, as segment preloads them)
    from segkit.models.cluster_validation import btyd_inputs, evidence_for

    cfg = config.load(None, use_env=False)
    if args.k != "auto":
        cfg = dataclasses.replace(cfg, k=int(args.k))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.csv"
        sample.write(sample.generate(args.rows, args.customers, seed=7), path)
        base = pipeline.run(str(path), cfg, cluster=False)  # read, customer table, CLV (imports warmed)
    quiet = lambda _step: None  # noqa: E731
    rows: dict[str, tuple[float, float]] = {}
    rows["cluster"], clustered = _step(lambda: pipeline.add_clusters(base, quiet), args.repeat)
    rows["clv"], with_clv = _step(lambda: pipeline.add_clv(clustered), args.repeat)
    rows["validate"], done = _step(lambda: pipeline.add_validation(with_clv, quiet), args.repeat)
    cr = with_clv.clusters
    assert cr is not None and cr.labels is not None and with_clv.table.windows is not None
    btyd = btyd_inputs(cr, with_clv.customers, with_clv.clv, with_clv.table.windows.as_of)
    rows["  of which nulls"], ev = _step(lambda: evidence_for(cr, cfg, btyd), args.repeat)
    rows["  of which stability"], _ = _step(lambda: nulls.stability(cr.x, cr.labels, cr.k, cfg.random_state),
                                           args.repeat)
    in_turn = sum(rows[s][0] for s in ("cluster", "clv", "validate"))
    rows["together"], _ = _step(lambda: pipeline.add_models(base, quiet), args.repeat)
    total, total_cpu = rows["together"]
    print(f"{len(cr.labels):,} customers clustered, k = {done.clusters.k}, verdict {ev.verdict.code}; "
          f"null sample {ev.sample_size:,}, median of {args.repeat}", file=sys.stderr)
    for name, (wall, cpu) in rows.items():
        print(f"{name:<22} {wall:6.2f} s  (CPU {cpu:5.2f} s)", file=sys.stderr)
    print(f"{'steps one after another':<22} {in_turn:6.2f} s", file=sys.stderr)
    print(f"{'model steps together':<22} {total:6.2f} s  (CPU {total_cpu:5.2f} s); target <= {TARGET_S} s: "
          f"{'met' if total <= TARGET_S else 'missed'}", file=sys.stderr)
    print(json.dumps({"customers": int(len(cr.labels)), "k": done.clusters.k, "verdict": ev.verdict.code,
                      "sample_size": ev.sample_size, "replicates": max(t.replicates for t in ev.tests),
                      "resamples": nulls.RESAMPLES, "repeat": args.repeat,
                      "steps": {name.strip().removeprefix("of which "): {"wall_s": round(w, 3), "cpu_s": round(c, 3)}
                                for name, (w, c) in rows.items()},
                      "model_steps_s": round(total, 3), "model_steps_cpu_s": round(total_cpu, 3),
                      "in_turn_s": round(in_turn, 3),
                      "target_s": TARGET_S}))


def _step(call: Callable[[], Any], repeat: int) -> tuple[tuple[float, float], Any]:
    wall, cpu, out = timed(call, repeat)
    return (wall, cpu), out


if __name__ == "__main__":
    main()
