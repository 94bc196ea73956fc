"""What reaches the Spark driver (SPEC §8, §9): per-customer rows and small per-day aggregates,
never order lines, so a run with a driver result limit of 1 MB completes on a file whose order
lines alone are several MB, and gives the polars engine's assignments.csv byte for byte.

Each run starts its own JVM (``spark.driver.maxResultSize`` is fixed when the session starts),
so segkit runs in a child process, as a user runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from conftest import run_cli, run_process  # noqa: E402

pytestmark = pytest.mark.spark
LIMIT = "--conf spark.driver.maxResultSize=1m --conf spark.ui.enabled=false pyspark-shell"


def _sample(path: Path, *extra: str) -> Path:
    proc = run_cli("sample", "-o", str(path), "--rows", "100000", "--customers", "150", "--no-cost", "-q", *extra)
    assert proc.returncode == 0, proc.stderr.decode()
    return path


def _order_lines_bytes(path: Path) -> int:
    """The size of the order lines summed per (customer, order, date): what the driver used to collect."""
    from segkit import config
    from segkit.engines.polars import order_lines
    from segkit.ingest.read import read_input

    cfg = config.load(None, use_env=False)
    _raw, cleaned = order_lines(read_input(str(path)), cfg, lambda: read_input(str(path)))
    return int(cleaned.lines.estimated_size())


@pytest.mark.parametrize("extra", [(), ("--tiers", "retail", "--backtest", "90")], ids=["default", "retail-backtest"])
def test_small_driver_result_limit_gives_the_polars_assignments(tmp_path: Path, extra: tuple[str, ...]) -> None:
    src = _sample(tmp_path / "orders.csv")
    assert _order_lines_bytes(src) > 2 * 2**20  # the order lines could not come back under the limit
    common = ("-q", "--no-report", *extra)
    polars = run_cli("segment", str(src), "-o", str(tmp_path / "polars"), *common)
    assert polars.returncode == 0, polars.stderr.decode()
    spark = run_process("segment", str(src), "-o", str(tmp_path / "spark"), *common, "--engine", "spark",
                        "--spark-master", "local[2]", env={"PYSPARK_SUBMIT_ARGS": LIMIT}, timeout=900)
    assert spark.returncode == 0, spark.stderr.decode()[-2000:]
    for name in ("assignments.csv",):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "polars" / name).read_bytes()


def test_a_failed_spark_job_exits_74_with_one_line(tmp_path: Path) -> None:
    """A job Spark aborts (here: results above the driver's limit) is an I/O failure (exit 74)
    told in one line that names the limit, not exit 1 with a Java stack."""
    src = run_cli("sample", "-o", str(tmp_path / "o.csv"), "--rows", "3000", "--customers", "40", "--no-cost", "-q")
    assert src.returncode == 0, src.stderr.decode()
    tiny = "--conf spark.driver.maxResultSize=1k --conf spark.ui.enabled=false pyspark-shell"
    r = run_process("segment", str(tmp_path / "o.csv"), "-o", str(tmp_path / "out"), "-q", "--engine", "spark",
                    "--spark-master", "local[2]", env={"PYSPARK_SUBMIT_ARGS": tiny}, timeout=600)
    assert r.returncode == 74, r.stderr.decode()[-2000:]
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segkit: error: "), lines
    assert "spark.driver.maxResultSize" in lines[0] and "Exception" not in lines[0]
    assert not (tmp_path / "out").exists()
