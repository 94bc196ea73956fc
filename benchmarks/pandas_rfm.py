"""The typical pandas RFM script an analyst writes, as the comparison point for `segkit segment`.

Usage: python benchmarks/pandas_rfm.py ORDERS.csv OUT.csv

read_csv with parse_dates, one groupby for recency / frequency / monetary, pd.qcut scores 1-5 on
rank(method="first"), the three-digit RFM code, written to OUT.csv. It does far less than segkit
(no cleaning, no rejected rows, no tiers, clustering or statistics), which is the point of the
comparison. Prints one line of JSON (customers, seconds inside the script) on stdout.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def main(path: str, out_path: str) -> None:
    t0 = time.perf_counter()
    df = pd.read_csv(path, parse_dates=["order_date"], dtype={"customer_id": str, "order_id": str})
    snapshot = df["order_date"].max() + pd.Timedelta(days=1)
    rfm = df.groupby("customer_id").agg(
        recency=("order_date", lambda d: (snapshot - d.max()).days),
        frequency=("order_id", "nunique"),
        monetary=("amount", "sum"),
    )
    rfm["r_score"] = pd.qcut(rfm["recency"].rank(method="first"), 5, labels=[5, 4, 3, 2, 1]).astype(int)
    rfm["f_score"] = pd.qcut(rfm["frequency"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5]).astype(int)
    rfm["m_score"] = pd.qcut(rfm["monetary"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5]).astype(int)
    rfm["rfm_score"] = rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)
    rfm.to_csv(out_path)
    print(json.dumps({"customers": len(rfm), "seconds": round(time.perf_counter() - t0, 4)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
