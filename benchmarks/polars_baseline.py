"""The practical floor for `segkit segment`: polars alone reads the CSV and groups it by customer.

Usage: python benchmarks/polars_baseline.py ORDERS.csv|ORDERS.parquet

Reads the file lazily with the date parsed (customer_id and order_id kept as text, like segkit
does, so leading zeros survive) and computes, per customer, the last order date, the number of
distinct orders and the sum of amount. Nothing else: no validation, no cleaning, no output file.
Prints one line of JSON (customers, seconds inside the script) on stdout.
"""

from __future__ import annotations

import json
import sys
import time

import polars as pl


def main(path: str) -> None:
    t0 = time.perf_counter()
    if path.endswith(".parquet"):  # typed already (the --huge run)
        lf = pl.scan_parquet(path)
    else:
        lf = pl.scan_csv(
            path,
            schema_overrides={"customer_id": pl.String, "order_id": pl.String, "order_date": pl.Date,
                              "amount": pl.Float64},
        )
    out = (
        lf.group_by("customer_id")
        .agg(pl.col("order_date").max(), pl.col("order_id").n_unique(), pl.col("amount").sum())
        .collect()
    )
    print(json.dumps({"customers": out.height, "seconds": round(time.perf_counter() - t0, 4)}))


if __name__ == "__main__":
    main(sys.argv[1])
