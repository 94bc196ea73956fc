"""Ingest + customer table alone: segkit's engine reads the file and returns the customer base.

Usage: python benchmarks/segkit_ingest.py ORDERS.csv

Runs ``segkit.engines.customer_table`` with the default config (the read, the data-quality
accounting and the per-customer aggregates `segkit segment` starts from), then the shared
per-customer definitions (``features.finish``: scores, segments, tiers, lifecycle); no
clustering, validation or output files. Prints one line of JSON (customers, seconds inside).
"""

from __future__ import annotations

import json
import sys
import time

from segkit import config
from segkit.engines import customer_table
from segkit.customers.metrics import finish
from segkit.customers.tiers import resolve


def main(path: str) -> None:
    t0 = time.perf_counter()
    cfg = config.load()
    base, quality = customer_table(path, cfg)
    tiering = resolve(cfg, base["annual"], None)  # the config's tiers: no activity needed
    table = finish(base, cfg, quality.windows, tiering, True, quality.roles, quality.counts["excluded_after_as_of"],
                   quality.population_median_gap)
    print(json.dumps({"customers": table.customers.height, "seconds": round(time.perf_counter() - t0, 4)}))


if __name__ == "__main__":
    main(sys.argv[1])
