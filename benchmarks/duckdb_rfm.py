"""DuckDB's take on the floor, in-process: read_csv + GROUP BY customer, as polars_baseline.py does.

Usage: python benchmarks/duckdb_rfm.py ORDERS.csv|ORDERS.parquet

Per customer: last order date, number of distinct orders, sum of amount (customer_id and order_id
read as text, the date typed). Prints one line of JSON (customers, seconds inside the script).
"""

from __future__ import annotations

import json
import sys
import time

import duckdb


def main(path: str) -> None:
    t0 = time.perf_counter()
    con = duckdb.connect()
    if path.endswith(".parquet"):
        source = "read_parquet(?)"
    else:
        source = ("read_csv(?, header = true, types = {'customer_id': 'VARCHAR', 'order_id': 'VARCHAR', "
                  "'order_date': 'DATE', 'amount': 'DOUBLE'})")
    rows = con.execute(
        f"SELECT customer_id, max(order_date), count(DISTINCT order_id), sum(amount) FROM {source} "
        "GROUP BY customer_id",
        [path],
    ).fetchall()
    print(json.dumps({"customers": len(rows), "seconds": round(time.perf_counter() - t0, 4)}))


if __name__ == "__main__":
    main(sys.argv[1])
