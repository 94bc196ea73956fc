"""Reference for report writing: polars' own write_excel of the customer table segkit produced.

Usage: python benchmarks/polars_write_excel.py assignments.csv OUT.xlsx

Reads segkit's assignments.csv and writes it with ``DataFrame.write_excel`` (xlsxwriter, polars'
defaults). Prints one line of JSON on stdout: rows, columns, seconds for the read and for
write_excel alone.
"""

from __future__ import annotations

import json
import sys
import time

import polars as pl


def main(path: str, out_path: str) -> None:
    t0 = time.perf_counter()
    df = pl.read_csv(path, infer_schema_length=None)
    t1 = time.perf_counter()
    df.write_excel(out_path)
    t2 = time.perf_counter()
    print(json.dumps({"rows": df.height, "columns": df.width, "read_seconds": round(t1 - t0, 4),
                      "write_seconds": round(t2 - t1, 4)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
