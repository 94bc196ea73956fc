#!/usr/bin/env python3
"""segkit performance benchmark (SPEC §8): measures, writes BENCHMARKS.md.

    .venv/bin/python benchmarks/run.py              # 1M and 10M order lines, 3 repetitions, reports
    .venv/bin/python benchmarks/run.py --quick      # 200k lines, 1 repetition: CI smoke run (< 60 s)
    .venv/bin/python benchmarks/run.py --sizes 1m --repeat 5 --out /tmp/bench.md
    .venv/bin/python benchmarks/run.py --huge       # adds a 50M-line Parquet run (~8 min more, ~12 GB free)

What is measured, on the same file in the same run, each measurement in a fresh child process
(wall time from spawn to exit, peak RSS from ``os.wait4``'s rusage of that very child):

(a) ``segkit segment FILE --no-report -q -o DIR``;
(b) ``benchmarks/polars_baseline.py``: polars reads the CSV (date parsed) and groups it by customer:
    the practical floor;
(c) ``benchmarks/pandas_rfm.py``: the typical pandas RFM script (read_csv + groupby + qcut);
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
Exit status: 0 when every measurement ran (missed targets do not fail the
run), 1 when a required measurement (segment --no-report or a baseline) failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
VENV_BIN = ROOT / ".venv" / "bin"

TARGETS = {  # SPEC §8
    "segment_vs_polars": 2.0,  # segment time / polars read + group_by time, at most
    "segment_vs_pandas": 0.5,  # segment time / pandas RFM script time, at most
    "rss_vs_csv": 2.0,  # segment peak RSS / CSV size, at most
    "reports_vs_write_excel": 2.0,  # report time / polars write_excel time, at most
}
SPEC_ROWS = 10_000_000  # the SPEC's targets are stated for 10M order lines
REPORT_ROWS, REPORT_CUSTOMERS = 1_000_000, 100_000
HUGE_ROWS, HUGE_CUSTOMERS, HUGE_PART_ROWS = 50_000_000, 500_000, 10_000_000
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


# ------------------------------------------------------------------------------- measurement

@dataclass
class Run:
    wall: float  # seconds, spawn to exit
    maxrss: int  # bytes, peak resident set of the child
    rc: int
    stdout: str = ""
    stderr: str = ""
    killed: str | None = None
    busy_before: float | None = None  # share of all CPUs busy just before the start (other load)
    cpu: float = 0.0  # user + system seconds of the child
    others_during: float | None = None  # share of all CPUs used by other processes during the run

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.killed is None


@dataclass
class Series:
    """Repeated measurements of one command."""

    name: str
    cmd: list[str]
    runs: list[Run] = field(default_factory=list)
    note: str = ""

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    @property
    def median(self) -> float | None:
        return statistics.median(r.wall for r in self.good) if self.good else None

    @property
    def min(self) -> float | None:
        return min(r.wall for r in self.good) if self.good else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(r.cpu for r in self.good) if self.good else None

    @property
    def others_max(self) -> float | None:
        v = [r.others_during for r in self.runs if r.others_during is not None]
        return max(v) if v else None

    @property
    def peak_rss(self) -> int | None:
        return max(r.maxrss for r in self.good) if self.good else None

    def error(self) -> str:
        bad = next((r for r in self.runs if not r.ok), None)
        if bad is None:
            return ""
        if bad.killed:
            return bad.killed
        tail = (bad.stderr.strip().splitlines() or [""])[-1]
        return f"exit {bad.rc}: {tail[:200]}"

    def as_dict(self) -> dict:
        return {
            "name": self.name, "cmd": self.cmd, "note": self.note, "median_s": self.median,
            "peak_rss_bytes": self.peak_rss, "ok": self.ok,
            "runs": [{k: v for k, v in asdict(r).items() if k != "stdout" or len(v) < 2000} for r in self.runs],
        }


def _rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]), idle


def cpu_busy(interval: float = 0.5) -> float | None:
    """Share of all CPUs busy over ``interval`` seconds (None where /proc/stat is missing)."""
    try:
        t1, i1 = _cpu_times()
        time.sleep(interval)
        t2, i2 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i2 - i1) / (t2 - t1) if t2 > t1 else 0.0


def wait_idle(max_wait: float, threshold: float = 0.25) -> float | None:
    """Wait (at most ``max_wait`` s) until other processes leave the CPUs mostly idle.

    The machine may be shared; a busy core slows multi-threaded code (polars, OpenMP) far more
    than its share. Returns the last busy share seen, which is stored with the measurement.
    """
    deadline = time.perf_counter() + max_wait
    busy = cpu_busy()
    warned = False
    while busy is not None and busy > threshold and time.perf_counter() < deadline:
        if not warned:
            log(f"  CPUs {busy:.0%} busy with other work; waiting up to {max_wait:.0f} s for them to calm down")
            warned = True
        time.sleep(2)
        busy = cpu_busy()
    return busy


def measure(cmd: list[str], *, timeout: float, mem_limit: int, cwd: Path = ROOT,
            idle_wait: float = 0.0) -> Run:
    """Run ``cmd`` in a fresh child; wall time and the child's own peak RSS (os.wait4 rusage).

    A watchdog thread kills the child (its own process group: it was started in a new session)
    when it exceeds ``mem_limit`` bytes of RSS or ``timeout`` seconds. The child is waited for
    with WNOWAIT first, so the watchdog can never signal a pid that was already reaped and reused.
    """
    busy = wait_idle(idle_wait)  # with 0: only measured
    try:
        cpu0 = _cpu_times()
    except (OSError, ValueError, IndexError):
        cpu0 = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True)
        pid = proc.pid
        lock = threading.Lock()
        done = threading.Event()
        killed: list[str] = []

        def watchdog() -> None:
            while not done.wait(0.1):
                rss = _rss_of(pid)
                why = None
                if rss > mem_limit:
                    why = f"killed: RSS {rss / 2**30:.1f} GiB above --mem-limit-gb {mem_limit / 2**30:.1f}"
                elif time.perf_counter() - t0 > timeout:
                    why = f"killed: still running after {timeout:.0f} s"
                if why:
                    with lock:
                        if not done.is_set():
                            killed.append(why)
                            try:
                                os.killpg(pid, signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    return

        thread = threading.Thread(target=watchdog, daemon=True)
        thread.start()
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        wall = time.perf_counter() - t0
        with lock:
            done.set()
        _, status, usage = os.wait4(pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        thread.join()
        child_cpu = usage.ru_utime + usage.ru_stime
        others = None
        if cpu0 is not None:
            try:
                total1, idle1 = _cpu_times()
                tick, ncpu = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
                machine_busy = ((total1 - cpu0[0]) - (idle1 - cpu0[1])) / tick
                others = max(0.0, machine_busy - child_cpu) / (ncpu * wall) if wall > 0 else None
            except (OSError, ValueError, IndexError):
                pass
        out.seek(0)
        err.seek(0)
        return Run(wall=wall, maxrss=usage.ru_maxrss * MAXRSS_UNIT, rc=proc.returncode,
                   stdout=out.read().decode("utf-8", "replace"),
                   stderr=err.read().decode("utf-8", "replace")[-4000:],
                   killed=killed[0] if killed else None, busy_before=busy, cpu=child_cpu,
                   others_during=others)


# ------------------------------------------------------------------------------------- tools

def python_exe() -> str:
    """The interpreter that has segkit, polars and pandas: the repo's venv, else this one."""
    venv = VENV_BIN / "python"
    return str(venv) if venv.exists() else sys.executable


def segkit_cmd() -> list[str]:
    for cand in (VENV_BIN / "segkit", Path(sys.executable).parent / "segkit"):
        if cand.exists():
            return [str(cand)]
    found = shutil.which("segkit")
    return [found] if found else [python_exe(), "-m", "segkit"]


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size {text!r}: write e.g. 200k, 1m, 10m")
    n = float(m.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    if n < 1000:
        raise argparse.ArgumentTypeError(f"size {text!r}: at least 1k order lines")
    return int(n)


def label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "GiB" else f"{n / size:.0f} {unit}"
    return f"{n} B"


def secs(x: float | None) -> str:
    return "–" if x is None else (f"{x:.2f} s" if x < 100 else f"{x:.0f} s")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def warm(path: Path) -> None:
    """Read the file once so every measured command finds it in the page cache.

    Through one small buffer: a child's ``ru_maxrss`` starts from the RSS high-water mark of the
    process that spawned it (Linux keeps it across vfork + exec), so this harness must stay small.
    """
    buf = bytearray(1 << 20)
    with path.open("rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass


def own_peak_rss() -> int | None:
    """This harness's RSS high-water mark: the floor under every child's measured peak RSS."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# -------------------------------------------------------------------------------------- data

def generate(path: Path, rows: int, customers: int, *, seed: int | None = None) -> float:
    """``segkit sample`` into ``path`` unless it exists; returns seconds spent (0 when reused)."""
    if path.exists() and path.stat().st_size > 0:
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    cmd = [*segkit_cmd(), "sample", "-o", str(tmp), "--rows", str(rows), "--customers", str(customers), "-q"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    log(f"generating {path.name}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"run.py: generating {path} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    tmp.replace(path)
    took = time.perf_counter() - t0
    log(f"  {path.name}: {human_bytes(path.stat().st_size)} in {took:.0f} s")
    return took


def generate_huge(path: Path, rows: int, customers: int, part_rows: int) -> float:
    """A big Parquet file from several ``segkit sample`` parts, concatenated by ``sink_parquet``.

    Part i gets its own seed and shifts customer ids by i × customers-per-part (and prefixes
    order ids with i), so the parts hold disjoint customers and orders.
    """
    if path.exists() and path.stat().st_size > 0:
        return 0.0
    parts = -(-rows // part_rows)
    per_part_customers = customers // parts
    t0 = time.perf_counter()
    files = []
    for i in range(parts):
        n = min(part_rows, rows - i * part_rows)
        f = DATA / f"{path.stem}.part{i}.parquet"
        generate(f, n, per_part_customers, seed=7 + i)
        files.append(f)
    tmp = path.with_name(path.stem + ".partial.parquet")
    code = (
        "import sys, polars as pl\n"
        "out, per, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]\n"
        "frames = []\n"
        "for i, f in enumerate(files):\n"
        "    o = pl.col('order_id')\n"
        "    frames.append(pl.scan_parquet(f).with_columns(\n"
        "        (pl.col('customer_id').cast(pl.Int64) + i * per).cast(pl.String).str.zfill(6).alias('customer_id'),\n"
        "        pl.concat_str([o.str.slice(0, 2), pl.lit(str(i)), o.str.slice(2)]).alias('order_id')))\n"
        "pl.concat(frames).sink_parquet(out)\n"
    )
    log(f"concatenating {parts} parts into {path.name} (sink_parquet)")
    run = measure([python_exe(), "-c", code, str(tmp), str(per_part_customers), *map(str, files)],
                  timeout=3600, mem_limit=int(0.75 * total_ram()))
    if not run.ok:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"run.py: concatenating parts failed: {run.killed or run.stderr[-500:]}")
    tmp.replace(path)
    for f in files:
        f.unlink()
    took = time.perf_counter() - t0
    log(f"  {path.name}: {human_bytes(path.stat().st_size)} in {took:.0f} s "
        f"(concat peak RSS {human_bytes(run.maxrss)})")
    return took


# ------------------------------------------------------------------------------------ machine

def total_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def load_avg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "–"


def source_fingerprint() -> str | None:
    """Short sha256 of segkit's source files: the code measured, even when it is not committed."""
    import hashlib

    src = ROOT / "src" / "segkit"
    if not src.is_dir():
        return None
    digest = hashlib.sha256()
    for f in sorted(src.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".toml", ".html", ".j2", ".css", ".js") and "__pycache__" not in f.parts:
            digest.update(str(f.relative_to(src)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    code = (
        "import json, sys, platform, importlib.metadata as md\n"
        "v = {'python': platform.python_version()}\n"
        "for p in ('segkit', 'polars', 'pandas', 'numpy', 'scikit-learn', 'xlsxwriter', 'fastexcel'):\n"
        "    try: v[p] = md.version(p)\n"
        "    except md.PackageNotFoundError: v[p] = None\n"
        "print(json.dumps(v))\n"
    )
    try:
        versions = json.loads(subprocess.run([python_exe(), "-c", code], capture_output=True, text=True,
                                             check=True).stdout)
    except (subprocess.CalledProcessError, json.JSONDecodeError):
        versions = {"python": platform.python_version()}
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_bytes": total_ram(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "git": commit,
        "src_start": source_fingerprint(),
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_start": load_avg(),
    }


# --------------------------------------------------------------------------------- benchmarks

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
    gen_s = generate(csv, rows, customers)
    warm(csv)
    out = DATA / "out" / f"segment_{name}"
    pandas_out = DATA / "out" / f"pandas_rfm_{name}.csv"
    pandas_out.parent.mkdir(parents=True, exist_ok=True)
    series = {
        "segment": Series("segkit segment --no-report", [*seg, "segment", str(csv), "--no-report", "-q",
                                                          "-o", str(out)]),
        "polars": Series("polars read + group_by", [py, str(HERE / "polars_baseline.py"), str(csv)]),
        "pandas": Series("pandas RFM script", [py, str(HERE / "pandas_rfm.py"), str(csv), str(pandas_out)]),
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
    gen_s = generate(csv, REPORT_ROWS, REPORT_CUSTOMERS)
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


# ------------------------------------------------------------------------------------ report

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
        seg, pol, pan = s["segment"], s["polars"], s["pandas"]
        name = label(size["rows"])
        spec = size["rows"] == SPEC_ROWS
        rows.append({"target": "segment / polars read+group_by (time)", "file": name,
                     "measured": f"{secs(seg.median)} / {secs(pol.median)}",
                     "value": ratio(seg.median, pol.median), "limit": TARGETS["segment_vs_polars"], "spec": spec})
        rows.append({"target": "segment / pandas RFM script (time)", "file": name,
                     "measured": f"{secs(seg.median)} / {secs(pan.median)}",
                     "value": ratio(seg.median, pan.median), "limit": TARGETS["segment_vs_pandas"], "spec": spec})
        rows.append({"target": "segment peak RSS / CSV size", "file": name,
                     "measured": f"{human_bytes(seg.peak_rss)} / {human_bytes(size['file_bytes'])}",
                     "value": ratio(seg.peak_rss, size["file_bytes"]), "limit": TARGETS["rss_vs_csv"], "spec": spec})
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
            result += " (informative; SPEC states it for 10M lines)"
        lines.append(f"| {r['target']} | {r['file']} | {r['measured']} | {val} | ≤ {r['limit']:.1f} | {result} |")
    lines += [
        "",
        "## All measurements",
        "",
        f"Wall time from spawn to exit of a fresh child process (interpreter start and imports included): "
        f"median of {res['repeat']} interleaved repetition(s), and the fastest. CPU is the child's user + "
        f"system time (median). Peak RSS is the child's `ru_maxrss` from `os.wait4`, the largest over the "
        f"repetitions (exact above this harness's own peak of {human_bytes(res.get('harness_peak_rss'))}, which a "
        f"spawned child inherits as its starting high-water mark). \"Others' load\" is the share of all CPUs that other processes used while the command "
        f"ran (the largest over the repetitions): the machine may be shared, and with 2 cores another busy "
        f"process slows multi-threaded code badly"
        + (f"; each run first waits up to {res['idle_wait']:.0f} s for the CPUs to be less than 25% busy."
           if res["idle_wait"] else "."),
        "",
        "| file | size | lines | customers | command | median | fastest | CPU | peak RSS | others' load | status |",
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
            lines.append(f"{head} {secs(s.median)} | {secs(s.min)} | {secs(s.cpu)} | {human_bytes(s.peak_rss)} | "
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
    lines += [
        "",
        "## How it is measured",
        "",
        "- Inputs: `segkit sample -o benchmarks/data/orders_<N>.csv --rows N --customers N/100` "
        "(deterministic, seed 7); the report benchmark uses 1,000,000 lines for 100,000 customers.",
        "- (a) `segkit segment FILE --no-report -q -o DIR` (the console script of the venv).",
        "- (b) `benchmarks/polars_baseline.py`: `pl.scan_csv` with the date parsed, "
        "`group_by(customer_id).agg(max(order_date), n_unique(order_id), sum(amount)).collect()`.",
        "- (c) `benchmarks/pandas_rfm.py`: `pd.read_csv(parse_dates=...)`, groupby recency/frequency/monetary, "
        "`pd.qcut(rank(method=\"first\"), 5)` scores, written to CSV.",
        "- (d) `segkit segment --report xlsx,html` and `--no-report` on the 100k-customer file, the same run "
        "timed per step, and `benchmarks/polars_write_excel.py` (`pl.read_csv(assignments.csv).write_excel(...)`).",
        "- Every command runs in a fresh child process; the input is read once beforehand so all start "
        "from the page cache; repetitions are interleaved; raw numbers in `benchmarks/results/*.json`.",
        "",
    ]
    return "\n".join(lines)


def strip_private(obj):
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj


# -------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="segkit benchmark (SPEC §8); writes BENCHMARKS.md.")
    ap.add_argument("--quick", action="store_true",
                    help="200k lines, 1 repetition, no 10M and no report benchmark (CI smoke run)")
    ap.add_argument("--sizes", default=None, help="order-line counts, comma-separated, e.g. 200k,1m,10m (default 1m,10m); none for "
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
    args = ap.parse_args(argv)
    try:
        spec = args.sizes or ("200k" if args.quick else "1m,10m")
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
