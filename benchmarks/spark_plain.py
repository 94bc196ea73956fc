#!/usr/bin/env python3
"""A plain PySpark aggregation: the floor segkit's Spark engine is measured against (SPEC §8).

    .venv/bin/python benchmarks/spark_plain.py FILE.csv OUT_DIR [--master local[2]]

Reads the CSV with its header (every column as text, as ``spark.read.csv`` does without a
schema), groups by customer: latest order date, distinct orders, summed amount, and writes the
result as CSV to OUT_DIR. The session is started the way segkit starts a local one (same master,
UI off, errors-only log), in this process, so a whole-process time compares like with like.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("out")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (SparkSession.builder.appName("plain-rfm").master(args.master).config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.log.level", "ERROR")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    df = spark.read.option("header", True).csv(args.file)
    out = df.groupBy("customer_id").agg(
        F.max(F.to_date("order_date")).alias("last_order_date"),
        F.countDistinct("order_id").alias("orders"),
        F.sum(F.col("amount").cast("decimal(20,2)")).alias("amount"),
    )
    out.write.mode("overwrite").option("header", True).csv(args.out)
    spark.stop()


if __name__ == "__main__":
    main()
