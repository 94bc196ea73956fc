"""lifetimes 0.11.3's Pareto/NBD and MBG/NBD fits, recorded by tests/data/record_lifetimes_models.py."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def recorded(name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(the JSON document, the per-customer columns as float arrays) of one recorded data set."""
    ref = json.loads((DATA / f"lifetimes_models_{name}.json").read_text(encoding="utf-8"))
    with gzip.open(DATA / f"lifetimes_models_{name}.csv.gz", "rt", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return ref, {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "customer_id"}


def histories(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return cols["frequency"], cols["recency"], cols["T"]
