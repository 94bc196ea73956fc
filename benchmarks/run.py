#!/usr/bin/env python3
"""segkit performance benchmark (SPEC §8): measures, writes BENCHMARKS.md.

    .venv/bin/python benchmarks/run.py              # 2M and 10M order lines, 3 repetitions, reports
    .venv/bin/python benchmarks/run.py --quick      # 200k lines, 1 repetition: CI smoke run (< 60 s)
    .venv/bin/python benchmarks/run.py --sizes 1m --repeat 5 --out /tmp/bench.md
    .venv/bin/python benchmarks/run.py --huge       # adds a 50M-line Parquet run (~8 min more, ~12 GB free)

What is measured, on the same file in the same run, each measurement in a fresh child process
(wall time from spawn to exit, peak RSS from ``os.wait4``'s rusage of that very child):

(a) ``segkit segment FILE --no-report -q -o DIR``;
(b) ``benchmarks/polars_baseline.py``: polars reads the CSV (date parsed) and groups it by customer:
    the practical floor;
(c) ``benchmarks/pandas_rfm.py``: the typical pandas RFM script (read_csv + groupby + qcut);
(c2) ``benchmarks/duckdb_rfm.py``: DuckDB in-process, read_csv + GROUP BY (the same query as (b));
(c3) ``benchmarks/segkit_ingest.py``: segkit's ingest + customer table alone (the engine and the
    per-customer definitions, no clustering, validation or files);
(d) reports for 100,000 customers (a 1M-line file with 100k customers): ``segkit segment --report
    xlsx,html`` and ``--no-report`` on that file, the same report run under
    ``benchmarks/profile_steps.py`` (which times the reports step itself), against
    ``benchmarks/polars_write_excel.py`` (polars' ``write_excel`` of the assignments.csv segkit wrote);
    the ratio uses the timed reports step, else the difference of the medians;
(e) ``--huge`` only: a 50M-line Parquet file (500k customers), generated as five 10M-line
    ``segkit sample`` parts and concatenated with ``sink_parquet`` (one 10M-line sample peaks at
    3.9 GB, so 50M lines in one go would need an estimated 15-20 GB), then segment and the polars
    baseline on it once. segment peaked at 10.4 GB there, so keep ~12 GB free.

Each file is also run once under ``benchmarks/profile_steps.py`` (wall time and RSS per pipeline
step) unless ``--no-steps``; that run is not part of the medians.

Repetitions are interleaved (a, b, c, a, b, c, ...) so drift hits every command alike; the input is
read once beforehand so every command starts with the file in the page cache. Medians are reported.
The machine may be shared: before each measurement the harness waits (``--idle-wait``, default
120 s) for other processes to leave the CPUs under 25% busy, and records how much CPU other
processes used while each command ran ("others' load"), so a disturbed number can be recognised.
A watchdog kills a child whose RSS passes ``--mem-limit-gb`` (default 75% of RAM), so a runaway
run cannot take the machine down; that run is reported as failed.

Generated inputs go to benchmarks/data/ (git-ignored) and are reused when present; generation
writes to a temporary name first, so an interrupted run never leaves a truncated file behind.
Raw results go to benchmarks/results/ as JSON. ``--quick`` writes its table to
benchmarks/results/BENCHMARKS-quick.md unless ``--out`` is given, so a smoke run does not replace
the committed numbers. Needs a POSIX system (os.wait4); CPU-load figures need Linux's /proc.
Modules: common.py (paths, helpers, machine), harness.py (one measured child), inputs.py
(generated files), suites.py (what is measured), report.py (BENCHMARKS.md), run.py (this CLI).
Exit status: 0 when every measurement ran (missed targets do not fail the
run), 1 when a required measurement (segment --no-report or a baseline) failed, 2 on usage errors.
"""

from __future__ import annotations


from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import RESULTS, ROOT, label, load_avg, log, machine, own_peak_rss, parse_size, python_exe, segkit_cmd
from common import source_fingerprint, total_ram
from report import render, strip_private
from suites import bench_huge, bench_models, bench_reports, bench_size


def render_again(results: Path, out_md: Path) -> int:
    """BENCHMARKS.md from a saved results JSON: each measured series rebuilt, rendered as ``main`` does."""
    from harness import series_from_dict

    res = json.loads(results.read_text(encoding="utf-8"))
    for group in [*res.get("sizes", []), *(res[k] for k in ("reports", "huge") if res.get(k))]:
        group["_series"] = {k: series_from_dict(v) for k, v in group["series"].items()}
    out_md.write_text(render(res), encoding="utf-8")
    log(f"wrote {out_md} from {results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="segkit benchmark (SPEC §8); writes BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="200k lines, 1 repetition, no 10M and no report benchmark (CI smoke run)")
    ap.add_argument("--sizes", default=None, help="order-line counts, comma-separated, e.g. 200k,2m,10m (default 2m,10m); none for "
                         "only the report and --huge benchmarks")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per command (default 3)")
    ap.add_argument("--out", type=Path, default=None,
                    help="Markdown file to write (default BENCHMARKS.md; with --quick "
                         "benchmarks/results/BENCHMARKS-quick.md)")
    ap.add_argument("--no-reports", action="store_true", help="skip the 100k-customer report benchmark")
    ap.add_argument("--no-steps", action="store_true", help="skip the per-step profile run of each file")
    ap.add_argument("--huge", action="store_true", help="also a 50M-line Parquet run (slow, memory hungry)")
    ap.add_argument("--mem-limit-gb", type=float, default=None,
                    help="kill a measured child above this RSS (default 75%% of RAM)")
    ap.add_argument("--timeout", type=float, default=3600, help="kill a measured child after this many seconds")
    ap.add_argument("--idle-wait", type=float, default=None,
                    help="before each measurement wait up to this many seconds for other processes to leave "
                         "the CPUs idle (default 120; 0 with --quick)")
    ap.add_argument("--render", type=Path, default=None, metavar="RESULTS_JSON",
                    help="measure nothing: write BENCHMARKS.md (or --out) again from a results JSON of an earlier "
                         "run, e.g. after a target changed")
    args = ap.parse_args(argv)
    if args.render:
        return render_again(args.render, args.out or ROOT / "BENCHMARKS.md")
    try:
        spec = args.sizes or ("200k" if args.quick else "2m,10m")
        sizes = [] if spec.strip().lower() == "none" else [parse_size(s) for s in spec.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    args.repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.idle_wait = args.idle_wait if args.idle_wait is not None else (0.0 if args.quick else 120.0)
    args.mem_limit = int(args.mem_limit_gb * 2**30) if args.mem_limit_gb else int(0.75 * total_ram())
    out_md = args.out or (RESULTS / "BENCHMARKS-quick.md" if args.quick else ROOT / "BENCHMARKS.md")
    seg, py = segkit_cmd(), python_exe()

    t0 = time.perf_counter()
    given = sys.argv[1:] if argv is None else argv
    res: dict = {
        "command": "python benchmarks/run.py" + ("".join(" " + a for a in given)),
        "quick": args.quick, "repeat": args.repeat, "idle_wait": args.idle_wait, "machine": machine(),
        "sizes": [],
    }
    log(f"segkit: {' '.join(seg)}; python: {py}; sizes {', '.join(map(label, sizes))}; repeat {args.repeat}")
    for rows in sizes:
        res["sizes"].append(bench_size(rows, args, seg, py))
    if not args.quick and not args.no_reports:
        res["reports"] = bench_reports(args, seg, py)
    if args.huge:
        res["huge"] = bench_huge(args, seg, py)
    if not args.quick:
        res["models"] = bench_models(py)
    res["total_s"] = time.perf_counter() - t0
    res["load_end"] = load_avg()
    res["src_end"] = source_fingerprint()
    res["harness_peak_rss"] = own_peak_rss()
    if res["src_end"] != res["machine"]["src_start"]:
        log("WARNING: segkit's source changed while the benchmark ran; the numbers mix two versions")

    out_md.parent.mkdir(parents=True, exist_ok=True)
    text = render(res)
    out_md.write_text(text, encoding="utf-8")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = json.dumps(strip_private(res), indent=2, default=str)
    (RESULTS / f"results-{'quick-' if args.quick else ''}{stamp}.json").write_text(doc, encoding="utf-8")

    print(text.split("## All measurements")[0].split("## Targets")[1].strip())
    log(f"wrote {out_md} in {res['total_s']:.0f} s")
    failed = [s.name for size in res["sizes"] for s in size["_series"].values() if not s.ok]
    if res.get("reports"):
        rs = res["reports"]["_series"]
        failed += [rs[k].name for k in ("no_report", "write_excel") if not rs[k].ok]
    if res.get("huge"):
        failed += [s.name for s in res["huge"]["_series"].values() if not s.ok]
    if failed:
        log(f"FAILED measurements: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
