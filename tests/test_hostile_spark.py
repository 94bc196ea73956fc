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


def test_spark_detects_the_decimal_comma_like_polars(tmp_path: Path, spark) -> None:  # noqa: F811
    from test_hostile_inputs import _semicolon_csv

    amounts = [f"{1 + i}.{i % 10}57,60" if i % 3 else f"{10 + i},5" for i in range(40)]
    src = _semicolon_csv(tmp_path / "o.csv", amounts)
    outs = {}
    for engine in ("polars", "spark"):
        outs[engine] = tmp_path / engine
        r = run_cli("segment", str(src), "-o", str(outs[engine]), "--engine", engine, *FAST)
        assert r.returncode == 0, (engine, r.stderr)
    assert (outs["polars"] / "assignments.csv").read_bytes() == (outs["spark"] / "assignments.csv").read_bytes()


@pytest.mark.parametrize("kind, unpack", [("bz2", "bunzip2 -k"), ("gz", "gunzip -k"), ("xz", "unxz -k")])
def test_spark_refuses_a_compressed_input_naming_the_fix(tmp_path: Path, kind: str, unpack: str) -> None:
    import bz2
    import gzip
    import lzma

    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    packed = tmp_path / f"o.csv.{kind}"
    packed.write_bytes({"bz2": bz2, "gz": gzip, "xz": lzma}[kind].compress(src.read_bytes()))
    r = run_cli("segment", str(packed), "-o", str(tmp_path / "out"), "--engine", "spark", *FAST)
    assert r.returncode == 2, r.stderr
    err = r.stderr.decode().strip()
    assert err.startswith(f"segkit: error: {packed.name}: a ") and "compressed" in err and len(err.splitlines()) == 1
    assert f"`{unpack} {packed.name}`" in err and "--engine polars" in err
    assert "NUL bytes" not in err
    # the fix the message names works
    r = run_cli("segment", str(packed), "-o", str(tmp_path / "out"), "--engine", "polars", *FAST)
    assert r.returncode == 0, r.stderr


def test_spark_refuses_a_compressed_file_without_its_extension(tmp_path: Path) -> None:
    import bz2

    src = write_csv(tmp_path / "o.csv", HEADER, orders())
    hidden = tmp_path / "orders.csv"
    hidden.write_bytes(bz2.compress(src.read_bytes()))
    r = run_cli("segment", str(hidden), "-o", str(tmp_path / "out"), "--engine", "spark", *FAST)
    assert r.returncode == 2 and b"bzip2-compressed" in r.stderr, r.stderr


def test_spark_errors_are_one_line_without_jvm_output(tmp_path: Path) -> None:
    from conftest import run_process

    src = write_csv(tmp_path / "o.csv", ["customer_id", "order_date"], [["C1", "2024-01-01"]])
    r = run_process("segment", str(src), "-o", str(tmp_path / "out"), "--engine", "spark", *FAST, timeout=240)
    assert r.returncode == 65, r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segkit: error: "), lines
