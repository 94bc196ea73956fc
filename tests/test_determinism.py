"""Same input, same numbers: the report's float sums and means do not depend on row order or on
polars' thread count.

polars adds a float column in an order it picks at run time (partial sums per thread in a
group_by, chunk by chunk in a Series, one chunk per thread after a filter), so on the full Online
Retail file the R x F mean net amount of report.xlsx differed in its last digit between
POLARS_MAX_THREADS=1 and 8. Each test below feeds the same customers in two row orders or chunk
layouts and asks for the same bytes, and checks the value against the exact sum.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from segkit.customers.sums import fmean, fsum, group_fsums
from segkit.ingest.clean import MICRO

N = 6000
TEXT = {"mean_monetary": "Mean net amount", "heat_title": "Customers by R and F"}


def _customers(seed: int = 7) -> pl.DataFrame:
    """Customers with amounts of every size (cents to a million) and random R and F scores."""
    rng = random.Random(seed)
    micro = [rng.choice((rng.randrange(1, 10**8), rng.randrange(10**8, 10**12))) // 10_000 * 10_000
             for _ in range(N)]
    return pl.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(N)],
        "r_score": [rng.randint(1, 5) for _ in range(N)],
        "f_score": [rng.randint(1, 5) for _ in range(N)],
        "tier": [rng.choice(("key", "regular", "scattered")) for _ in range(N)],
        "_monetary": micro,
        "monetary": [m / MICRO for m in micro],
        "_annual": micro,
        "annual_spend": [m / MICRO for m in micro],
    }, schema_overrides={"r_score": pl.Int8, "f_score": pl.Int8})


def _other_orders(df: pl.DataFrame) -> list[pl.DataFrame]:
    """The same rows reversed, shuffled, and cut into many chunks."""
    return [df.reverse(), df.sample(fraction=1.0, shuffle=True, seed=3),
            pl.concat([df.slice(i, 97) for i in range(0, df.height, 97)], rechunk=False)]


def test_heat_table_mean_is_the_exact_mean_in_any_row_order():
    from segkit.outputs.report.context import heat_table

    df = _customers()
    got = heat_table(df, TEXT)["mean_monetary"]
    for other in _other_orders(df):
        assert heat_table(other, TEXT)["mean_monetary"] == got
    cells = df.group_by("r_score", "f_score").agg(pl.col("_monetary"))
    exact = {(r, f): float(Fraction(sum(v), len(v) * MICRO)) for r, f, v in cells.iter_rows()}
    assert got == [[exact[(r, f)] for f in (1, 2, 3, 4, 5)] for r in (5, 4, 3, 2, 1)]


def test_spend_shares_of_the_actions_sheet_do_not_depend_on_row_order():
    from segkit.outputs.report.context import _group_stats

    df = _customers()
    got = _group_stats(df, "tier")
    total = sum(df["_annual"].to_list())
    assert got["key"][2] == float(Fraction(sum(df.filter(pl.col("tier") == "key")["_annual"].to_list()), total))
    for other in _other_orders(df):
        assert _group_stats(other, "tier") == got


def test_value_at_risk_by_tier_and_predicted_revenue_do_not_depend_on_row_order():
    from segkit.models.value_at_risk import by_tier
    from segkit.outputs.report.clv_section import risk_by_tier

    class Res:
        churn_from_p_alive = True

    rng = random.Random(11)
    df = _customers().with_columns(
        pl.Series("prior_annual_spend", [rng.uniform(0, 5e5) for _ in range(N)]),
        pl.Series("p_alive", [rng.random() for _ in range(N)]),
        pl.Series("churn_risk", [rng.choice(("low", "medium", "high")) for _ in range(N)]),
        pl.Series("_repeat_purchases", [rng.randint(0, 3) for _ in range(N)]),
        pl.Series("predicted_revenue", [rng.uniform(0, 1e5) / 3 for _ in range(N)]),
    )
    tiers = ["key", "regular", "scattered"]
    doc_rows = by_tier(df, Res(), tiers)
    risk = risk_by_tier(doc_rows, df, [(t, t) for t in tiers])
    for other in _other_orders(df):
        assert by_tier(other, Res(), tiers) == doc_rows
        assert risk_by_tier(by_tier(other, Res(), tiers), other, [(t, t) for t in tiers]) == risk
    key = df.filter(pl.col("tier") == "key")["predicted_revenue"].to_list()
    assert risk[0]["predicted_revenue"] == float(sum(map(Fraction, key)))


def test_cluster_profile_means_do_not_depend_on_chunks():
    from segkit.models.kmeans import _profiles

    df = _customers().with_columns(pl.Series("cluster", [i % 2 for i in range(N)], pl.Int64),
                                   pl.lit(30, pl.Int64).alias("recency_days"), pl.lit(2, pl.Int64).alias("frequency"))
    features = ["log_monetary", "log_frequency", "log_recency_days"]
    centers = np.array([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]])
    got = _profiles(df, 2, centers, features)
    for other in _other_orders(df):
        assert _profiles(other, 2, centers, features) == got
    ones = df.filter(pl.col("cluster") == 1)["monetary"].to_list()
    assert got[1]["mean_monetary"] == float(sum(map(Fraction, ones)) / len(ones))


def test_fsum_is_exact_and_keeps_polars_conventions_for_nulls_and_infinities():
    values = [1e16, 1.0, -1e16, 0.1, None] * 3
    present = [v for v in values if v is not None]
    assert fsum(values) == float(sum(map(Fraction, present))) != sum(present)  # plain addition loses the 1.0s
    assert fsum(list(reversed(values))) == fsum(values)
    assert fsum([]) == 0.0 and fsum([None]) == 0.0
    assert fmean([None]) is None and fmean([1.0, None, 2.0]) == 1.5
    assert fsum([float("inf"), 1.0]) == float("inf")
    assert np.isnan(fsum([float("inf"), float("-inf")]))
    assert fsum([1e308, 1e308]) == float("inf")
    df = pl.DataFrame({"g": ["a", "b", "a", "b"], "h": [1, 1, 1, 2], "x": [0.1, None, 0.2, 0.3]})
    assert group_fsums(df, "g", ["x"]) == {"a": [fsum([0.1, 0.2])], "b": [0.3]}
    assert group_fsums(df, ["g", "h"], ["x"]) == {("a", 1): [fsum([0.1, 0.2])], ("b", 1): [0.0], ("b", 2): [0.3]}


@pytest.mark.parametrize("threads", ["1", "8"])
def test_heat_table_is_the_same_at_any_polars_thread_count(threads, tmp_path):
    """The symptom itself: a fresh interpreter per thread count, both must give the exact means."""
    import ast
    import os
    import subprocess
    import sys
    from pathlib import Path

    import segkit

    df = pl.concat([_customers(seed) for seed in range(5)])
    df.write_parquet(tmp_path / "c.parquet")
    exact = [float(Fraction(sum(v), len(v) * MICRO)) for v in
             df.group_by("r_score", "f_score").agg(pl.col("_monetary")).sort("r_score", "f_score")["_monetary"].to_list()]
    src = os.pathsep.join([str(Path(segkit.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    code = ("import sys, polars as pl\n"
            "from segkit.outputs.report.context import heat_table\n"
            f"t = heat_table(pl.read_parquet(sys.argv[1]), {TEXT!r})\n"
            "print(repr([m for row in reversed(t['mean_monetary']) for m in row]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.parquet")], capture_output=True, text=True,
                         env={**os.environ, "POLARS_MAX_THREADS": threads, "PYTHONPATH": src}, timeout=60,
                         check=True).stdout
    assert ast.literal_eval(out) == exact
