"""BENCHMARKS.md from the results: targets (SPEC §8), every measurement, the step profile."""

from __future__ import annotations

from pathlib import Path

from common import human_bytes, label, secs

TARGETS = {  # SPEC §8, as ratios measured in one run on the same file
    "segment_vs_polars": 2.0,  # 10M lines: segment time / polars read + group_by time, at most (goal 1.5)
    "segment_vs_polars_small": 2.5,  # 2M lines: the same ratio, at most
    "ingest_vs_polars": 1.5,  # 10M lines: ingest + customer table / polars floor, at most (informative)
    "segment_vs_pandas": 1 / 1.5,  # segment time / pandas RFM script time, at most (pandas >= 1.5x segment's)
    "rss_vs_floor": 1.5,  # segment peak RSS / the polars floor's peak RSS, at most
    "reports_vs_write_excel": 0.35,  # report time / polars write_excel time, at most
    "huge_vs_polars": 3.0,  # 50M lines as Parquet: segment time / polars read + group_by time, at most
    "huge_rss_gib": 4.0,  # 50M lines as Parquet: segment's peak RSS in GiB, at most
}
SPEC_ROWS = 10_000_000  # the SPEC's targets are stated for 10M order lines
SMALL_ROWS = 2_000_000  # and the fixed-cost target for 2M
REPORT_ROWS, REPORT_CUSTOMERS = 1_000_000, 100_000


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def verdict(value: float | None, limit: float) -> str:
    return "n/a" if value is None else ("PASS" if value <= limit else "FAIL")


def reports_time(rep: dict) -> tuple[float | None, str]:
    """Seconds spent on the reports, and how that number was obtained."""
    s = rep["_series"]
    if not rep["available"]:
        return None, "not available"
    if rep.get("reports_step_s") is not None:
        return rep["reports_step_s"], "the reports step, timed inside segment"
    w, n = s["with_report"].median, s["no_report"].median
    if w is None or n is None:
        return None, "not available"
    if w <= n:
        return None, "difference of medians not positive (noise); rerun on a quiet machine"
    return w - n, "median(segment with reports) − median(segment --no-report)"


def target_rows(res: dict) -> list[dict]:
    rows = []
    for size in res["sizes"]:
        s = size["_series"]
        seg, pol, pan, ing = s["segment"], s["polars"], s["pandas"], s.get("ingest")
        name = label(size["rows"])
        spec = size["rows"] in (SPEC_ROWS, SMALL_ROWS)
        big = size["rows"] == SPEC_ROWS
        limit = TARGETS["segment_vs_polars"] if size["rows"] >= SPEC_ROWS else TARGETS["segment_vs_polars_small"]
        rows.append({"target": "segment / polars read+group_by (time)", "file": name,
                     "measured": f"{secs(seg.median)} / {secs(pol.median)}",
                     "value": ratio(seg.median, pol.median), "limit": limit, "spec": spec})
        if ing is not None:
            rows.append({"target": "ingest + customer table / polars (time)", "file": name,
                         "measured": f"{secs(ing.median)} / {secs(pol.median)}",
                         "value": ratio(ing.median, pol.median), "limit": TARGETS["ingest_vs_polars"], "spec": big})
        rows.append({"target": "segment / pandas RFM script (time)", "file": name,
                     "measured": f"{secs(seg.median)} / {secs(pan.median)}",
                     "value": ratio(seg.median, pan.median), "limit": TARGETS["segment_vs_pandas"], "spec": big})
        rows.append({"target": "segment peak RSS / polars floor's peak RSS", "file": name,
                     "measured": f"{human_bytes(seg.peak_rss)} / {human_bytes(pol.peak_rss)}",
                     "value": ratio(seg.peak_rss, pol.peak_rss), "limit": TARGETS["rss_vs_floor"], "spec": big})
    rep = res.get("reports")
    if rep:
        wx = rep["_series"]["write_excel"]
        t, how = reports_time(rep)
        row = {"target": "reports / polars write_excel (100k customers)", "file": "1m, 100k cust.",
               "measured": f"{secs(t) if t is not None else 'not available'} / {secs(wx.median)}",
               "value": ratio(t, wx.median), "limit": TARGETS["reports_vs_write_excel"], "spec": True}
        if t is None:
            row["note"] = rep["_series"]["with_report"].note or how
        rows.append(row)
    huge = res.get("huge")
    if huge:
        seg, pol = huge["_series"]["segment"], huge["_series"]["polars"]
        rows.append({"target": "segment / polars read+group_by (time)", "file": "50m Parquet",
                     "measured": f"{secs(seg.median)} / {secs(pol.median)}",
                     "value": ratio(seg.median, pol.median), "limit": TARGETS["huge_vs_polars"], "spec": True})
        rows.append({"target": "segment peak RSS (GiB)", "file": "50m Parquet", "measured": human_bytes(seg.peak_rss),
                     "value": None if seg.peak_rss is None else seg.peak_rss / 2**30,
                     "limit": TARGETS["huge_rss_gib"], "spec": True})
    return rows


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def render(res: dict) -> str:
    m = res["machine"]
    v = m["versions"]
    src = m.get("src_start")
    src_note = f"source fingerprint {src}"
    if res.get("src_end") and res["src_end"] != src:
        src_note += f" at the start, {res['src_end']} at the end: **segkit's code changed during this run**"
    lines = [
        "# segkit benchmarks",
        "",
        f"Measured by `{res['command']}` on {m['date']}"
        + (" (quick smoke run: one repetition, small file; not a measurement of the targets)" if res["quick"] else "")
        + ". Targets from SPEC §8; each is a ratio of two commands run in the same benchmark run on the same file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable)",
        f"- RAM: {m['ram_bytes'] / 2**30:.1f} GiB",
        f"- OS: {m['os']}; load average at start {m['load_start']}, at end {res.get('load_end', '–')}",
        f"- Python {v.get('python')}, polars {v.get('polars')}, pandas {v.get('pandas')}, numpy {v.get('numpy')}, "
        f"scikit-learn {v.get('scikit-learn')}, xlsxwriter {v.get('xlsxwriter')}",
        f"- segkit {v.get('segkit')} (git {m['git']}, {src_note})",
        "",
        "## Targets",
        "",
        "| target | file | measured (median) | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    if not target_rows(res):
        lines.append("| (no target measured in this run) | | | | | |")
    for r in target_rows(res):
        val = "–" if r["value"] is None else f"{r['value']:.2f}"
        result = verdict(r["value"], r["limit"])
        if r.get("note"):
            result = r["note"]
        elif not r["spec"]:
            result += " (informative; SPEC states it for another size)"
        lines.append(f"| {r['target']} | {r['file']} | {r['measured']} | {val} | ≤ {r['limit']:.2f} | {result} |")
    lines += [
        "",
        "## All measurements",
        "",
        f"Wall time from spawn to exit of a fresh child process (interpreter start and imports included): "
        f"median of {res['repeat']} interleaved repetition(s), and the spread (fastest – slowest). CPU is the child's user + "
        f"system time (median). Peak RSS is the child's `ru_maxrss` from `os.wait4`, the largest over the "
        f"repetitions (exact above this harness's own peak of {human_bytes(res.get('harness_peak_rss'))}, which a "
        f"spawned child inherits as its starting high-water mark). \"Others' load\" is the share of all CPUs that other processes used while the command "
        f"ran (the largest over the repetitions): the machine may be shared, and with 2 cores another busy "
        f"process slows multi-threaded code badly"
        + (f"; each run first waits up to {res['idle_wait']:.0f} s for the CPUs to be less than 25% busy."
           if res["idle_wait"] else "."),
        "",
        "| file | size | lines | customers | command | median | spread (min–max) | CPU | peak RSS | others' load | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = [(label(s["rows"]) + " CSV", s) for s in res["sizes"]]
    if res.get("reports"):
        groups.append(("1m CSV, 100k customers", res["reports"]))
    if res.get("huge"):
        groups.append(("50m Parquet", res["huge"]))
    for title, g in groups:
        for s in g["_series"].values():
            head = f"| {title} | {human_bytes(g['file_bytes'])} | {g['rows']:,} | {g['customers']:,} | {s.name} |"
            if not s.runs:
                lines.append(f"{head} – | – | – | – | – | {s.note or 'skipped'} |")
                continue
            status = "ok" if s.ok else (s.note or s.error())
            lines.append(f"{head} {secs(s.median)} | {secs(s.min)} – {secs(s.max)} | {secs(s.cpu)} | {human_bytes(s.peak_rss)} | "
                         f"{pct(s.others_max)} | {status} |")
    rep = res.get("reports")
    if rep:
        s = rep["_series"]
        t, how = reports_time(rep)
        lines += ["", "### Reports (100,000 customers)", ""]
        if rep["available"]:
            diff = (None if s["with_report"].median is None or s["no_report"].median is None
                    else s["with_report"].median - s["no_report"].median)
            lines.append(f"- Whole `segment --report xlsx,html`: {secs(s['with_report'].median)} (median); "
                         f"`--no-report` on the same file: {secs(s['no_report'].median)}; difference "
                         f"{secs(diff) if diff is not None else '–'}.")
            lines.append(f"- The reports step timed inside segment (benchmarks/profile_steps.py, median): "
                         f"{secs(rep.get('reports_step_s'))}. The ratio uses {how}.")
        else:
            lines.append(f"- `segment --report xlsx,html`: {s['with_report'].note or 'not available'}.")
        if rep.get("write_excel_inner_s") is not None:
            lines.append(f"- The write_excel child: {secs(s['write_excel'].median)} in all (interpreter, imports, "
                         f"read_csv), of which `write_excel` itself {secs(rep['write_excel_inner_s'])}; the ratio "
                         "uses the whole child.")
    steps = [(label(sz["rows"]), sz["steps"]) for sz in res["sizes"] if sz.get("steps")]
    if steps:
        lines += ["", "## Where segment's time goes", "",
                  "One extra run per file of `benchmarks/profile_steps.py FILE --no-report` (the CLI's code "
                  "path in one process, stamped at each pipeline step); RSS at the end of the step and the "
                  "peak so far.", ""]
        for name, doc in steps:
            lines += [f"{name} lines, {secs(doc['total_seconds'])} in all, others' load {pct(doc.get('others_during'))}:",
                      "", "| step | seconds | RSS after | peak so far |", "|---|---|---|---|"]
            for st in doc["steps"]:
                if st["step"] in ("exit", "after outputs", "terminal summary") and st["seconds"] < 0.05:
                    continue
                lines.append(f"| {st['step']} | {st['seconds']:.2f} | {human_bytes(st['rss_after'])} | "
                             f"{human_bytes(st['peak_rss'])} |")
            lines.append("")
    huge = res.get("huge")
    if huge:
        s = huge["_series"]
        seg, pol = s["segment"], s["polars"]
        r = ratio(seg.median, pol.median)
        lines += ["", f"50M lines / 500k customers, Parquet ({human_bytes(huge['file_bytes'])}), one run: "
                  f"segment {secs(seg.median)}, peak RSS {human_bytes(seg.peak_rss)} ({seg.error() or 'ok'}); "
                  f"polars read + group_by {secs(pol.median)}, peak RSS {human_bytes(pol.peak_rss)}; ratio "
                  + ("–" if r is None else f"{r:.2f}") + "."]
    lines += model_lines(res.get("models"))
    lines += [
        "",
        "## How it is measured",
        "",
        "- Inputs: `segkit sample -o benchmarks/data/orders_<N>.csv --rows N --customers N/100 --no-cost` "
        "(deterministic, seed 7); the report benchmark uses 1,000,000 lines for 100,000 customers.",
        "- (a) `segkit segment FILE --no-report -q -o DIR` (the console script of the venv).",
        "- (b) `benchmarks/polars_baseline.py`: `pl.scan_csv` with the date parsed, "
        "`group_by(customer_id).agg(max(order_date), n_unique(order_id), sum(amount)).collect()`.",
        "- (e) `benchmarks/duckdb_rfm.py`: DuckDB in-process, `read_csv` with the same types + `GROUP BY "
        "customer_id` (max date, count distinct orders, sum amount).",
        "- (f) `benchmarks/segkit_ingest.py`: `segkit.engines.customer_table` + `features.finish` "
        "(read, data-quality accounting, customer table and its scores; no clustering, no files).",
        "- (c) `benchmarks/pandas_rfm.py`: `pd.read_csv(parse_dates=...)`, groupby recency/frequency/monetary, "
        "`pd.qcut(rank(method=\"first\"), 5)` scores, written to CSV.",
        "- (d) `segkit segment --report xlsx,html` and `--no-report` on the 100k-customer file, the same run "
        "timed per step, and `benchmarks/polars_write_excel.py` (`pl.read_csv(assignments.csv).write_excel(...)`).",
        "- Every command runs in a fresh child process; the input is read once beforehand so all start "
        "from the page cache; repetitions are interleaved; raw numbers in `benchmarks/results/*.json`.",
        "",
    ]
    return "\n".join(lines + spark_lines())


SPARK_RESULTS = Path(__file__).resolve().parent / "spark-results.md"
SPARK_RATIO = Path(__file__).resolve().parent / "spark-ratio.md"
SPARK_CAPACITY = Path(__file__).resolve().parent / "spark-capacity.md"


def spark_lines() -> list[str]:
    """The Spark engine's figures (written by benchmarks/spark_ratio.py, spark_capacity.py and
    spark_engine.py), kept across runs."""
    parts = [p.read_text(encoding="utf-8").strip() for p in (SPARK_RATIO, SPARK_CAPACITY, SPARK_RESULTS)
             if p.exists()]
    if not parts:
        return []
    return ["## Spark engine", "", "\n\n".join(parts), ""]


def strip_private(obj):
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj


def model_lines(models: dict | None) -> list[str]:
    """The model steps' cost at 100,000 customers (absolute targets, not ratios)."""
    if not models:
        return []
    lines = ["", "## Model steps at 100,000 customers", "",
             "| run | cluster | CLV | validate (nulls, stability) | together, as segment runs them | target | result |",
             "|---|---|---|---|---|---|---|"]
    for key, what in (("steps", "k chosen as segment does"), ("steps_k8", "k = 8 (the dearest case)")):
        v = models.get(key, {})
        if "model_steps_s" not in v:
            lines.append(f"| {what} | failed: {v.get('error')} | | | | ≤ 1.5 s | FAIL |")
            continue
        st = v["steps"]
        lines.append(f"| {what}: {v['customers']:,} customers, k = {v['k']}, verdict {v['verdict']}; null sample "
                     f"{v['sample_size']:,}, {v['replicates']} replicates | {st['cluster']['wall_s']:.2f} s | "
                     f"{st['clv']['wall_s']:.2f} s | {st['validate']['wall_s']:.2f} s ({st['nulls']['wall_s']:.2f} s, "
                     f"{st['stability']['wall_s']:.2f} s) | {v['model_steps_s']:.2f} s (CPU {v['model_steps_cpu_s']:.2f} s"
                     f"{_in_turn(v)}) "
                     f"| ≤ {v['target_s']} s | {verdict(v['model_steps_s'], v['target_s'])} |")
    c = models.get("clv", {})
    if "fit_and_predict_seconds_best" in c:
        lines.append(f"| CLV alone: BG/NBD + Gamma-Gamma fit and predictions, {c['customers']:,} simulated customers | "
                     f"| {c['fit_and_predict_seconds_best']:.2f} s | | | | (informative) |")
    lines += ["", "Median wall time of 3 runs of each step (`benchmarks/model_steps.py`, a child process); "
              "\"together\" is `pipeline.add_models`, which runs the nulls' tests beside k-means and the CLV fit, "
              "as `segment` does; the CLV row: `benchmarks/clv_cost.py`."]
    return lines


def _in_turn(v: dict) -> str:
    return f"; one after another {v['in_turn_s']:.2f} s" if "in_turn_s" in v else ""
