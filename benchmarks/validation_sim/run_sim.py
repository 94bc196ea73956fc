"""Reproduce the issue-22 table: false-"distinct" rate and power per family.

Usage (from benchmarks/validation_sim):

    ../../.venv/bin/python run_sim.py --seeds 20 --jobs 2 \\
        --out results/full.jsonl --table results/full.md

``--quick``: 3 seeds, 39 replicates (a smoke run of a few minutes). Each book goes through
segkit's own clustering, CLV fit and null evidence (simulate_families.py). Rows are appended to ``--out`` as JSON lines as they finish, and a run resumes from them (the
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


def _job(args: tuple[str, int, int]) -> dict[str, Any]:
    import families
    import simulate_families

    name, seed, replicates = args
    fam = {f.name: f for f in families.all_families()}[name]
    return simulate_families.run_dataset(fam, seed, replicates)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 39 replicates")
    ap.add_argument("--families", default="", help="comma-separated subset of family names")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="results/sim.jsonl")
    ap.add_argument("--table", default="results/sim.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.replicates = min(args.seeds, 3), 39

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
    jobs = [(f.name, s, args.replicates) for s in range(args.seeds) for f in fams
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
                  f"{row['verdict']} k={row['k']}", file=sys.stderr)
    rows = [r for r in rows if r["seed"] < args.seeds and any(r["family"] == f.name for f in fams)]
    table = simulate_families.markdown(simulate_families.summarise(rows, fams))
    Path(args.table).write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
