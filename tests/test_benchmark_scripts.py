"""The benchmark's own scripts still run against the library (CI's smoke run would fail late)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SAMPLE_DIR


def test_ingest_benchmark_builds_the_customer_table():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "segkit_ingest.py"), str(SAMPLE_DIR / "orders.xlsx")],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert json.loads(proc.stdout)["customers"] == 250  # the shipped sample's customers


def test_spark_capacity_scales_the_fitted_costs(tmp_path, monkeypatch):
    """The capacity table's fit recovers a known fixed cost and cost per line, and its driver
    column is the collected bytes per customer of the widest run times the customers."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import spark_capacity as cap

    runs = [{"seconds": 10.0 + 5e-6 * n, "lines": n, "customers": n // 100, "peak_collected": 66 * (n // 100),
             "collected": 0, "driver_rss": 0} for n in (20_000, 2_000_000, 10_000_000)]
    fixed, per_line = cap.fit(runs)
    assert abs(fixed - 10.0) < 1e-6 and abs(per_line - 5e-6) < 1e-12
    rows = [line for line in cap.table(runs, "local[2]", 2).splitlines() if line.startswith("| 10,000,000,000")]
    assert rows and "| 27.8 |" in rows[0] and "| 629 MiB |" in rows[0]  # 5 µs x 1e10 x 2 cores; 66 B x 1e7
