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
