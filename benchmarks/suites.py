"""The benchmark suites: order-line sizes, reports, the 50M-line Parquet run."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from common import DATA, HERE, ROOT, human_bytes, label, log, warm
from harness import Run, Series, measure
from inputs import generate, generate_huge

REPORT_ROWS, REPORT_CUSTOMERS = 1_000_000, 100_000
HUGE_ROWS, HUGE_CUSTOMERS, HUGE_PART_ROWS = 50_000_000, 500_000, 10_000_000


def run_series(tag: str, series: dict[str, Series], args, before=None, after=None, skip=None) -> None:
    """Interleaved repetitions: a, b, c, a, b, c, ...; ``before(key)`` runs ahead of each measurement
    (clearing an output folder), ``after(key, run)`` checks its result, ``skip(key)`` leaves a command
    out of the remaining repetitions."""
    for rep in range(args.repeat):
        for key, s in series.items():
            if skip and skip(key):
                continue
            if before:
                before(key)
            run = measure(s.cmd, timeout=args.timeout, mem_limit=args.mem_limit, idle_wait=args.idle_wait)
            s.runs.append(run)
            status = "ok" if run.ok else (run.killed or f"exit {run.rc}")
            others = "" if run.others_during is None else f", others' CPU load during {run.others_during:.0%}"
            log(f"{tag} [{rep + 1}/{args.repeat}] {s.name}: {run.wall:.2f} s, CPU {run.cpu:.1f} s, "
                f"peak RSS {human_bytes(run.maxrss)}{others} ({status})")
            if after:
                after(key, run)  # may mark the run failed (e.g. exit 0 but no report written)


def step_profile(csv: Path, extra: list[str], out: Path, args, py: str) -> dict | None:
    """One extra run of benchmarks/profile_steps.py: wall time and RSS per pipeline step."""
    shutil.rmtree(out, ignore_errors=True)
    run = measure([py, str(HERE / "profile_steps.py"), str(csv), *extra, "-q", "-o", str(out)],
                  timeout=args.timeout, mem_limit=args.mem_limit, idle_wait=args.idle_wait)
    line = next((ln for ln in reversed(run.stdout.splitlines()) if ln.startswith("{")), None)
    if not run.ok or line is None:
        log(f"  step profile of {csv.name} failed: {run.killed or run.stderr.strip()[-300:]}")
        return None
    doc = json.loads(line)
    doc.update(wall=run.wall, maxrss=run.maxrss, others_during=run.others_during)
    log("  steps: " + ", ".join(f"{s['step']} {s['seconds']:.1f} s" for s in doc["steps"] if s["seconds"] >= 0.05))
    return doc


def bench_size(rows: int, args, seg: list[str], py: str) -> dict:
    name = label(rows)
    customers = max(10, rows // 100)
    csv = DATA / f"orders_{name}.csv"
    gen_s = generate(csv, rows, customers, extra=("--no-cost",))
    warm(csv)
    out = DATA / "out" / f"segment_{name}"
    pandas_out = DATA / "out" / f"pandas_rfm_{name}.csv"
    pandas_out.parent.mkdir(parents=True, exist_ok=True)
    series = {
        "segment": Series("segkit segment --no-report", [*seg, "segment", str(csv), "--no-report", "-q",
                                                          "-o", str(out)]),
        "polars": Series("polars read + group_by", [py, str(HERE / "polars_baseline.py"), str(csv)]),
        "pandas": Series("pandas RFM script", [py, str(HERE / "pandas_rfm.py"), str(csv), str(pandas_out)]),
        "duckdb": Series("DuckDB read_csv + GROUP BY (in-process)", [py, str(HERE / "duckdb_rfm.py"), str(csv)]),
        "ingest": Series("segkit ingest + customer table", [py, str(HERE / "segkit_ingest.py"), str(csv)]),
    }

    def before(key: str) -> None:
        if key == "segment":
            shutil.rmtree(out, ignore_errors=True)

    run_series(name, series, args, before=before)
    steps = None if args.no_steps else step_profile(csv, ["--no-report"], DATA / "out" / f"steps_{name}", args, py)
    return {"rows": rows, "customers": customers, "file": str(csv.relative_to(ROOT)),
            "file_bytes": csv.stat().st_size, "generate_s": gen_s, "steps": steps,
            "series": {k: s.as_dict() for k, s in series.items()}, "_series": series}


def bench_reports(args, seg: list[str], py: str) -> dict:
    csv = DATA / "orders_100k_customers.csv"
    gen_s = generate(csv, REPORT_ROWS, REPORT_CUSTOMERS, extra=("--no-cost",))
    warm(csv)
    outs = {"no_report": DATA / "out" / "reports_no_report", "with_report": DATA / "out" / "reports_with_report",
            "steps": DATA / "out" / "reports_steps"}
    xlsx = DATA / "out" / "polars_write_excel.xlsx"
    series = {
        "no_report": Series("segkit segment --no-report", [*seg, "segment", str(csv), "--no-report", "-q",
                                                            "-o", str(outs["no_report"])]),
        "with_report": Series("segkit segment --report xlsx,html", [*seg, "segment", str(csv), "--report",
                                                                    "xlsx,html", "-q", "-o",
                                                                    str(outs["with_report"])]),
        "steps": Series("segment --report xlsx,html, timed per step (profile_steps.py)",
                        [py, str(HERE / "profile_steps.py"), str(csv), "--report", "xlsx,html", "-q", "-o",
                         str(outs["steps"])]),
        "write_excel": Series("polars write_excel of assignments.csv",
                              [py, str(HERE / "polars_write_excel.py"), str(outs["no_report"] / "assignments.csv"),
                               str(xlsx)]),
    }
    state = {"available": True}

    def before(key: str) -> None:
        if key in outs:
            shutil.rmtree(outs[key], ignore_errors=True)

    def after(key: str, run: Run) -> None:
        if key in ("with_report", "steps") and run.ok:
            missing = [f for f in ("report.xlsx", "report.html") if not (outs[key] / f).exists()]
            if missing:
                run.rc, run.stderr = -1, f"exit 0 but {', '.join(missing)} not written"
        if key == "with_report" and not run.ok:
            state["available"] = False
            series[key].note = "not available: " + series[key].error()
            log(f"  reports not available ({series[key].error()}); continuing without them")

    def skip(key: str) -> bool:
        if key in ("with_report", "steps") and not state["available"]:
            return True
        return key == "write_excel" and not (outs["no_report"] / "assignments.csv").exists()

    run_series("reports", series, args, before=before, after=after, skip=skip)
    inner = [json.loads(r.stdout) for r in series["write_excel"].good if r.stdout.strip().startswith("{")]
    report_steps = []
    for r in series["steps"].good:
        line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
        if line:
            steps = {s["step"]: s["seconds"] for s in json.loads(line)["steps"]}
            if "reports" in steps:
                report_steps.append(steps["reports"])
    return {"rows": REPORT_ROWS, "customers": REPORT_CUSTOMERS, "file": str(csv.relative_to(ROOT)),
            "file_bytes": csv.stat().st_size, "generate_s": gen_s, "available": state["available"],
            "write_excel_inner_s": statistics.median(i["write_seconds"] for i in inner) if inner else None,
            "reports_step_s": statistics.median(report_steps) if report_steps else None,
            "series": {k: s.as_dict() for k, s in series.items()}, "_series": series}


def bench_huge(args, seg: list[str], py: str) -> dict:
    pq = DATA / f"orders_{label(HUGE_ROWS)}.parquet"
    gen_s = generate_huge(pq, HUGE_ROWS, HUGE_CUSTOMERS, HUGE_PART_ROWS)
    warm(pq)
    out = DATA / "out" / "segment_huge"
    series = {
        "segment": Series("segkit segment --no-report (Parquet)", [*seg, "segment", str(pq), "--no-report", "-q",
                                                                   "-o", str(out)]),
        "polars": Series("polars read + group_by (Parquet)", [py, str(HERE / "polars_baseline.py"), str(pq)]),
    }
    one = argparse.Namespace(**{**vars(args), "repeat": 1})  # one repetition: it is the memory we want to see
    run_series("huge", series, one, before=lambda key: shutil.rmtree(out, ignore_errors=True))
    return {"rows": HUGE_ROWS, "customers": HUGE_CUSTOMERS, "file": str(pq.relative_to(ROOT)),
            "file_bytes": pq.stat().st_size, "generate_s": gen_s,
            "series": {k: s.as_dict() for k, s in series.items()}, "_series": series}


def bench_models(py: list[str] | str) -> dict:
    """SPEC §8's model target at 100,000 customers: every model step together (auto-k, refit, CLV,
    both nulls, stability) <= 1.5 s; also the CLV fit alone on simulated customers. Each script
    times its own steps in a child process and prints JSON."""
    import json
    import subprocess

    exe = py if isinstance(py, list) else [py]
    out: dict = {}
    for name, script, extra in (("steps", "model_steps.py", []),
                                ("steps_k8", "model_steps.py", ["--k", "8"]),
                                ("clv", "clv_cost.py", ["--repeat", "3"])):
        log(f"model cost: {script} {' '.join(extra)}")
        proc = subprocess.run([*exe, str(Path(__file__).parent / script), *extra],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            out[name] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        out[name] = json.loads(proc.stdout[proc.stdout.index("{"):])
    return out
