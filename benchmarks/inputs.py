"""Generated inputs under benchmarks/data/ (git-ignored), reused when present."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from common import DATA, ROOT, human_bytes, log, python_exe, segkit_cmd, total_ram
from harness import measure

def generate(path: Path, rows: int, customers: int, *, seed: int | None = None, extra: tuple[str, ...] = ()) -> float:
    """``segkit sample`` (with ``extra`` options) into ``path`` unless it exists; returns seconds
    spent (0 when reused)."""
    if path.exists() and path.stat().st_size > 0:
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    cmd = [*segkit_cmd(), "sample", "-o", str(tmp), "--rows", str(rows), "--customers", str(customers), "-q"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    cmd += list(extra)
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


