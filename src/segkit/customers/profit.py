"""Gross profit by tier and persona, and the Pareto of profit beside the Pareto of spend (SPEC §3).

Input: the customer table with ``_gross_profit`` and ``_monetary`` in micro-units (present only when
the input had a cost or gross profit column). Sums stay exact integers until the shares.
"""

from __future__ import annotations

from typing import Any

import polars as pl

PARETO_SHARES = (0.5, 0.8)


def has_profit(customers: pl.DataFrame) -> bool:
    return "_gross_profit" in customers.columns


def pareto(values: pl.Series) -> dict[str, float | None]:
    """The smallest share of customers, largest values first, whose values add up to at least 50%
    (80%) of the total; None when the total is not positive (no share of it means anything)."""
    v = values.fill_null(0).sort(descending=True)
    total, n = int(v.sum()), v.len()
    out: dict[str, float | None] = {}
    for share in PARETO_SHARES:
        key = f"customers_for_{round(share * 100)}"
        if total <= 0 or n == 0:
            out[key] = None
            continue
        reached = (v.cum_sum() >= share * total).arg_true()
        out[key] = (int(reached[0]) + 1) / n
    return out


def _by(df: pl.DataFrame, col: str, order: list[str], total: int) -> list[dict[str, Any]]:
    g = {k: (c, p, m) for k, c, p, m in df.group_by(col).agg(
        pl.len(), pl.col("_gross_profit").fill_null(0).sum(), pl.col("_monetary").sum()).iter_rows()}
    rows = []
    for key in [*order, *sorted(k for k in g if k is not None and k not in order)]:
        c, p, m = g.get(key, (0, 0, 0))
        rows.append({col: key, "customers": int(c), "gross_profit": p / 1e6,
                     "share_of_profit": p / total if total > 0 else None,
                     "margin": p / m if m > 0 else None})
    return rows


def profit_section(customers: pl.DataFrame, tiers: list[str], personas: list[str]) -> dict[str, Any]:
    """summary.json ``profit``: totals, by tier (config order), by persona, and both Paretos."""
    profit = customers["_gross_profit"].fill_null(0)
    total, monetary = int(profit.sum()), int(customers["_monetary"].sum())
    return {
        "gross_profit": total / 1e6,
        "margin": total / monetary if monetary > 0 else None,
        "tiers": _by(customers, "tier", tiers, total),
        "personas": _by(customers.filter(pl.col("persona").is_not_null()), "persona", personas, total),
        "pareto_profit": pareto(profit),
        "pareto_spend": pareto(customers["_monetary"]),
    }
