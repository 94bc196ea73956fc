"""Reproduce the issue-22 table: false-"distinct" rate and power per family.

Usage (from benchmarks/validation_sim):

    ../../.venv/bin/python run_sim.py --seeds 20 --jobs 2 \\
        --out results/full.jsonl --table results/full.md

``--quick``: 3 seeds, 39 replicates, no "old" comparison (a smoke run of a few minutes).
``--no-old`` skips segkit's pre-issue-22 test (copula alone, scikit-learn R² at the silhouette's
k); ``--old-from`` takes those fields from an earlier run on the same (family, seed) books.
Rows are appended to ``--out`` as JSON lines as they finish, and a run resumes from them (the
(family, seed) pairs already there are skipped), so a long run can be stopped and continued.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _job(args: tuple[str, int, int, bool]) -> dict[str, Any]:
    import families
    import simulate_families

    name, seed, replicates, old = args
    fam = {f.name: f for f in families.all_families()}[name]
    return simulate_families.run_dataset(fam, seed, replicates, old)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 39 replicates, no old comparison")
    ap.add_argument("--no-old", action="store_true", help="skip segkit's pre-issue-22 tests")
    ap.add_argument("--families", default="", help="comma-separated subset of family names")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="results/sim.jsonl")
    ap.add_argument("--table", default="results/sim.md")
    ap.add_argument("--k-from", default="", help="JSONL of a later run on the same books with k_gap_* fields")
    ap.add_argument("--old-from", default="", help="JSONL of an earlier run whose old_* fields fill rows run with --no-old")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.replicates, args.no_old = min(args.seeds, 3), 39, True

    import families
    import simulate_families

    fams = families.all_families()
    if args.families:
        keep = set(args.families.split(","))
        fams = [f for f in fams if f.name in keep]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    rows: list[dict[str, Any]] = []
    if out.exists():
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        done = {(r["family"], r["seed"]) for r in rows}
    jobs = [(f.name, s, args.replicates, not args.no_old) for s in range(args.seeds) for f in fams
            if (f.name, s) not in done]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, out.open("a") as fh:
        futures = [pool.submit(_job, j) for j in jobs]
        for i, fut in enumerate(as_completed(futures), 1):
            row = fut.result()
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"[{i}/{len(jobs)} {time.perf_counter() - t0:.0f}s] {row['family']} seed {row['seed']}: "
                  f"{row['verdict_sb']} k={row['k_sb']}", file=sys.stderr)
    rows = [r for r in rows if r["seed"] < args.seeds and any(r["family"] == f.name for f in fams)]
    for r in rows:  # rows of a run made before k_max_excess_* was recorded: k_* was that rule then
        for tag in simulate_families.VARIANTS:
            if f"k_max_excess_{tag}" not in r and f"k_smallest_{tag}" in r:
                r[f"k_max_excess_{tag}"] = r[f"k_{tag}"]
    if args.k_from:  # k of the rules recorded by a later run on the same books (same verdicts)
        later = {(x["family"], x["seed"]): x for x in map(json.loads, Path(args.k_from).read_text().splitlines())}
        for r in rows:
            x = later.get((r["family"], r["seed"]), {})
            assert not x or all(x[f"verdict_{t}"] == r[f"verdict_{t}"] for t in simulate_families.VARIANTS)
            r.update({k: v for k, v in x.items() if k.startswith(("k_gap_", "excess_"))})
    if args.old_from:
        old = {(r["family"], r["seed"]): r for r in map(json.loads, Path(args.old_from).read_text().splitlines())}
        for r in rows:
            o = old.get((r["family"], r["seed"]), {})
            r.update({k: v for k, v in o.items() if k.startswith("old_") and k not in r})
    table = simulate_families.markdown(simulate_families.summarise(rows, fams))
    Path(args.table).write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
