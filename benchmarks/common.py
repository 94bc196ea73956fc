"""Paths, small helpers and the machine description shared by the benchmark modules."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
VENV_BIN = ROOT / ".venv" / "bin"

MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


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


def keep_row(path: Path, note: str, header: str, name: str, row: str) -> None:
    """Write ``path`` as ``note``, a table (``header`` + one row per input file: ``row`` for
    ``name``, the others as they were) and whatever text followed the table before."""
    rows, after, seen = {}, [], False
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("|"):
                seen = True
                if line.startswith("| ") and cells[0] not in ("file", "") and not cells[0].startswith("-"):
                    rows[cells[0]] = line
            elif seen:
                after.append(line)
    rows[name] = row
    tail = "\n".join(after).strip("\n")
    path.write_text(note + header + "\n".join(rows[k] for k in sorted(rows)) + "\n" + (f"\n{tail}\n" if tail else ""),
                    encoding="utf-8")
