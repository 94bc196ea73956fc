"""`segkit --help` and `segkit inspect` start fast: they never import the analytics stack."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

HEAVY = ("sklearn", "scipy", "pandas", "xlsxwriter", "jinja2", "pyspark")
PROBE = """
import sys, runpy
sys.argv = ["segkit", *sys.argv[1:]]
try:
    runpy.run_module("segkit", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _loaded(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED"))
    return line.split()[1:]


def test_help_imports_no_analytics():
    assert _loaded("--help") == []


def test_inspect_imports_no_analytics():
    assert _loaded("inspect", str(ROOT / "sample_data" / "orders_zh.csv")) == []


def test_probe_sees_a_heavy_import():
    # the probe itself must be able to fail: `segment` clusters, which needs scikit-learn
    assert "sklearn" in _loaded("segment", str(ROOT / "sample_data" / "orders_zh.csv"), "--no-report", "-q",
                                "-o", "-", "--format", "csv")
