"""One local SparkSession for the Spark test modules: two cores, four shuffle partitions, no UI."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from segkit.engines.spark import local_session

    session = local_session("local[2]", {"spark.sql.shuffle.partitions": "4",
                                         "spark.default.parallelism": "2"})
    yield session
    session.stop()
