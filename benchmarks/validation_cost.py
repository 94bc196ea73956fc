"""Wall time that the one-population nulls and the stability resampling add, at 100,000 customers.

Usage: python benchmarks/validation_cost.py [--customers 100000] [--rows 1000000] [--repeat 3] [--k auto]

Generates synthetic order lines with ``segkit.sample.generate`` (the generator behind
``segkit sample``), builds the customer table and the clustering exactly as ``segkit segment``
does (``pipeline.run``), then times the nulls (``cluster_validation.evidence_for``: the copula and
the buy-till-you-die null, 100 replicates each, on two threads) and ``nulltest.stability`` on the
clustered customers with the default settings: the best of ``--repeat`` runs of each, wall and CPU
time (the CPU time is steadier on a shared machine). Prints a table to stderr and one line of
JSON to stdout. SPEC §8: every model step together (auto-k, refit, both nulls, stability, CLV)
at most 1.5 s at 100,000 customers on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", default="auto", help="clusters: auto (as segment does) or a number, e.g. 8 for the dearest case")
    args = ap.parse_args()

    from segkit import config, pipeline, sample
    from segkit.models import nulls as nulltest
    from segkit.models.cluster_validation import btyd_inputs, evidence_for

    cfg = config.load(None, use_env=False)
    if args.k != "auto":
        cfg = dataclasses.replace(cfg, k=int(args.k))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.csv"
        sample.write(sample.generate(args.rows, args.customers, seed=7), path)
        res = pipeline.run(str(path), cfg)
    cr = res.clusters
    assert res.table.windows is not None
    btyd = btyd_inputs(cr, res.customers, res.clv, res.table.windows.as_of)
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, call in (
        ("null_test", lambda: evidence_for(cr, cfg, btyd)),
        ("stability", lambda: nulltest.stability(cr.x, cr.labels, cr.k, cfg.random_state)),
    ):
        best, best_cpu = float("inf"), float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = call()
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        times[name], cpu[name] = best, best_cpu
        if name == "null_test":
            nt = out
    total = times["null_test"] + times["stability"]
    total_cpu = cpu["null_test"] + cpu["stability"]
    replicates = max(t.replicates for t in nt.tests)
    print(f"customers clustered {len(cr.labels):,}, k = {cr.k}; test sample {nt.sample_size:,} customers, "
          f"{replicates} replicates per null ({', '.join(t.null for t in nt.tests if t.ran)}), "
          f"{nulltest.RESAMPLES} bootstrap resamples", file=sys.stderr)
    print(f"nulls {times['null_test']:.2f} s ({cpu['null_test']:.2f} s CPU), stability {times['stability']:.2f} s, "
          f"together {total:.2f} s wall, {total_cpu:.2f} s CPU (best of {args.repeat}); verdict {nt.verdict.code}",
          file=sys.stderr)
    print(json.dumps({"customers": int(len(cr.labels)), "k": cr.k, "sample_size": nt.sample_size,
                      "replicates": replicates, "resamples": nulltest.RESAMPLES,
                      "nulls": [t.null for t in nt.tests if t.ran],
                      "null_test_s": round(times["null_test"], 3), "null_test_cpu_s": round(cpu["null_test"], 3),
                      "stability_s": round(times["stability"], 3),
                      "validation_s": round(total, 3), "validation_cpu_s": round(total_cpu, 3),
                      "verdict": nt.verdict.code}))


if __name__ == "__main__":
    main()
