"""Sums and means of floats that do not depend on row order or on polars' thread count.

Floating-point addition is not associative, and polars does not add a float column in one fixed
order: a group_by sum or mean adds partial sums made per thread, a Series adds chunk by chunk, and
a filter on a large frame leaves one chunk per thread. The last digit of such a sum then changes
with POLARS_MAX_THREADS or the number of cores (the R x F mean net amount of the full Online
Retail file did), and the same input no longer gives the same bytes. ``math.fsum`` returns the
exact sum rounded once, whatever the order of its values.

Money read from the input is summed in exact integer micro-units instead (``ingest/clean.py``);
these are for values computed in floats: model predictions and money already in currency units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl


def fsum(values: Iterable[float | None]) -> float:
    """The correctly rounded sum of the non-null values (0.0 for none, as polars' sum)."""
    present = [v for v in values if v is not None]
    try:
        return math.fsum(present)
    except ValueError:  # +inf and -inf: NaN, as plain addition gives
        return math.nan
    except OverflowError:  # finite values whose sum leaves the float range: an infinity
        return float(sum(sorted(present)))


def fmean(values: Iterable[float | None]) -> float | None:
    """The mean of the non-null values from their correctly rounded sum (None for none)."""
    present = [v for v in values if v is not None]
    return fsum(present) / len(present) if present else None


def group_fsums(df: pl.DataFrame, by: str | Sequence[str], columns: Sequence[str]) -> dict[Any, list[float]]:
    """For each value of ``by`` (a tuple for several columns): the ``fsum`` of each of ``columns``."""
    keys = [by] if isinstance(by, str) else list(by)
    g = df.group_by(keys).agg(pl.col(c) for c in columns)
    return {(row[0] if len(keys) == 1 else tuple(row[:len(keys)])): [fsum(v) for v in row[len(keys):]]
            for row in g.iter_rows()}
