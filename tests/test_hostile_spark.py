"""Hostile inputs on the Spark engine (issue 25): the same limits and messages as the polars
engine, one line per error."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from conftest import run_cli, write_csv  # noqa: E402
from spark_fixtures import spark  # noqa: E402,F401
from test_hostile_inputs import FAST, HEADER, orders  # noqa: E402

pytestmark = pytest.mark.spark


def test_spark_refuses_amounts_whose_sum_would_wrap_like_polars(tmp_path: Path, spark) -> None:  # noqa: F811
    rows = orders() + [["BIG", "2023-03-01", "5e12"]] * 3
    src = write_csv(tmp_path / "o.csv", HEADER, rows)
    r = run_cli("segment", str(src), "-o", str(tmp_path / "out"), "--engine", "spark", *FAST)
    assert r.returncode == 65, r.stderr
    assert b"amount too large" in r.stderr and b"9,000,000,000,000" in r.stderr
