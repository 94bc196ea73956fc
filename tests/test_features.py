"""Customer metrics against hand-computed expectations (SPEC §3)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest

from segkit.ingest.clean import MICRO
from segkit.pipeline import build_customers

AS_OF = dt.date(2025, 1, 1)  # tier window 2024-01-02 .. 2024-12-31


def lines(rows, roles=()):
    """rows: (customer_id, order_key, date, amount in currency units, *role values)."""
    data = {
        "customer_id": [r[0] for r in rows],
        "order_key": [r[1] for r in rows],
        "order_date": [r[2] for r in rows],
        "amount": [round(r[3] * MICRO) for r in rows],
    }
    for i, role in enumerate(roles):
        data[role] = [r[4 + i] for r in rows]
    return pl.DataFrame(data, schema_overrides={"amount": pl.Int64})


def table(rows, cfg, roles=(), **changes):
    cfg = dataclasses.replace(cfg, as_of=AS_OF, **changes)
    return build_customers(lines(rows, roles), cfg, roles)


def by_id(t):
    return {r["customer_id"]: r for r in t.customers.iter_rows(named=True)}


@pytest.mark.parametrize(("spend", "tier"), [
    (10_000_000, "strategic"), (9_999_999.99, "key"),
    (3_000_000, "key"), (2_999_999.99, "growth"),
    (1_000_000, "growth"), (999_999.99, "regular"),
    (300_000, "regular"), (299_999.99, "scattered"),
    (0.01, "scattered"), (-50, "scattered"),
])
def test_tier_boundaries_are_inclusive_to_the_cent(cfg, spend, tier):
    t = table([("A", "o1", dt.date(2024, 6, 1), spend), ("B", "o2", dt.date(2024, 6, 1), 1)], cfg)
    assert by_id(t)["A"]["tier"] == tier
    assert by_id(t)["A"]["annual_spend"] == spend


def test_windows_split_annual_and_prior_spend(cfg):
    rows = [
        ("A", "o1", dt.date(2024, 12, 31), 100),   # last day of tier window
        ("A", "o2", dt.date(2024, 1, 2), 50),      # first day of tier window
        ("A", "o3", dt.date(2024, 1, 1), 30),      # last day of prior window
        ("A", "o4", dt.date(2023, 1, 2), 20),      # first day of prior window
        ("A", "o5", dt.date(2023, 1, 1), 7),       # before both
        ("A", "o6", dt.date(2025, 1, 1), 999),     # on as_of: excluded
    ]
    t = table(rows, cfg)
    a = by_id(t)["A"]
    assert (a["annual_spend"], a["prior_annual_spend"], a["monetary"]) == (150, 50, 207)
    assert a["yoy_growth"] == pytest.approx(2.0)
    assert a["frequency"] == 5 and a["recency_days"] == 1
    assert t.excluded_after_as_of == 1
    assert t.windows.tier_start == dt.date(2024, 1, 2) and t.windows.prior_start == dt.date(2023, 1, 2)


def test_calendar_year_window(cfg):
    rows = [("A", "o1", dt.date(2023, 12, 31), 10), ("A", "o2", dt.date(2023, 1, 1), 5),
            ("A", "o3", dt.date(2022, 1, 1), 20), ("A", "o4", dt.date(2024, 6, 1), 1000)]
    a = by_id(table(rows, cfg, year=2023))["A"]  # the data reaches back to the prior year's first day
    assert (a["annual_spend"], a["prior_annual_spend"]) == (15, 20)


def test_returns_net_against_purchases_and_are_not_purchases(cfg):
    rows = [
        ("A", "o1", dt.date(2024, 3, 1), 100),
        ("A", "o1", dt.date(2024, 3, 1), -30),     # a returned line inside the order: net 70
        ("A", "r1", dt.date(2024, 9, 1), -20),     # a credit note: not a purchase, reduces monetary
        ("A", "o2", dt.date(2024, 5, 1), 40),
        ("A", "o2", dt.date(2024, 5, 1), -40),     # net zero order: not a purchase
    ]
    a = by_id(table(rows, cfg))["A"]
    assert a["frequency"] == 1
    assert a["monetary"] == 50
    assert a["last_order_date"] == dt.date(2024, 3, 1)  # the credit note is not a purchase
    assert a["recency_days"] == (AS_OF - dt.date(2024, 3, 1)).days


def test_return_only_customer_is_listed_as_lost(cfg):
    rows = [("A", "o1", dt.date(2024, 3, 1), 100), ("B", "o2", dt.date(2024, 3, 1), 200),
            ("R", "r1", dt.date(2024, 4, 1), -25)]
    t = table(rows, cfg)
    r = by_id(t)["R"]
    assert r["first_order_date"] is None and r["last_order_date"] is None and r["recency_days"] is None
    assert (r["frequency"], r["monetary"], r["rfm_segment"], r["r_score"]) == (0, -25, "Lost", 1)
    assert r["churn_risk"] == "high" and r["lifecycle"] == "lapsed"
    assert t.no_purchase_customers == 1


def test_frequency_without_order_id_counts_purchase_dates(cfg):
    d = dt.date(2024, 3, 1)
    rows = [("A", d.isoformat(), d, 10), ("A", d.isoformat(), d, 5),
            ("A", "2024-03-02", dt.date(2024, 3, 2), 1)]
    assert by_id(table(rows, cfg))["A"]["frequency"] == 2


def test_quantile_scores_follow_the_formula_with_ties(cfg):
    # 10 customers; monetary 1,1,1,2,3,4,5,5,9,10 -> strictly-worse counts 0,0,0,3,4,5,6,6,8,9
    values = [1, 1, 1, 2, 3, 4, 5, 5, 9, 10]
    rows = [(f"C{i}", f"o{i}", dt.date(2024, 6, 1), v) for i, v in enumerate(values)]
    t = by_id(table(rows, cfg))
    expected = [1 + (5 * w) // 10 for w in (0, 0, 0, 3, 4, 5, 6, 6, 8, 9)]
    assert [t[f"C{i}"]["m_score"] for i in range(10)] == expected == [1, 1, 1, 2, 3, 3, 4, 4, 5, 5]
    # identical recency and frequency for all: nobody is strictly worse -> score 1 for all
    assert {r["r_score"] for r in t.values()} == {1} and {r["f_score"] for r in t.values()} == {1}


def test_recency_score_counts_larger_recency_and_no_purchase_as_worse(cfg):
    rows = [("A", "o", dt.date(2024, 12, 31), 5), ("B", "o", dt.date(2024, 12, 1), 5),
            ("C", "o", dt.date(2024, 6, 1), 5), ("D", "r", dt.date(2024, 12, 31), -5)]
    t = by_id(table(rows, cfg))
    # worse counts: A 3 (B, C, D), B 2, C 1 (D), D 0 -> 1 + floor(5w/4)
    assert [t[c]["r_score"] for c in "ABCD"] == [4, 3, 2, 1]


def test_threshold_scoring(cfg):
    rows = [("A", f"o{i}", dt.date(2024, 12, 1) - dt.timedelta(days=i), 3000) for i in range(4)]
    t = by_id(table(rows, cfg, scoring_method="thresholds", recency_thresholds=(30, 90, 180, 365),
                    frequency_thresholds=(2, 3, 5, 10), monetary_thresholds=(1e4, 1e5, 1e6, 1e7)))
    a = t["A"]
    # recency 31 -> R4; frequency 4 -> F3; monetary 12,000 -> M2
    assert (a["recency_days"], a["r_score"], a["f_score"], a["m_score"]) == (31, 4, 3, 2)


def test_value_class_against_population_means(cfg):
    rows = [("A", "o1", dt.date(2024, 12, 30), 1000), ("A", "o2", dt.date(2024, 12, 20), 1000),
            ("B", "o3", dt.date(2024, 1, 5), 10)]
    t = by_id(table(rows, cfg))
    # A: best at everything -> important_value (重要价值); B: worst at everything -> general_winback (一般挽留)
    assert t["A"]["value_class"] == "important_value" and t["B"]["value_class"] == "general_winback"


def test_lifecycle_rules_in_order(cfg):
    d_old, d_prior, d_now = dt.date(2022, 6, 1), dt.date(2023, 6, 1), dt.date(2024, 6, 1)
    rows = [
        ("lapsed", "a", d_prior, 100),
        ("new", "b", d_now, 100),
        ("growing", "c", d_prior, 100), ("growing", "d", d_now, 120),
        ("declining", "e", d_prior, 100), ("declining", "f", d_now, 80),
        ("mature", "g", d_prior, 100), ("mature", "h", d_now, 119.99),
        ("noprior", "i", d_old, 100), ("noprior", "j", d_now, 100),
    ]
    t = by_id(table(rows, cfg))
    assert {c: t[c]["lifecycle"] for c in t} == {
        "lapsed": "lapsed", "new": "new", "growing": "growing", "declining": "declining",
        "mature": "mature", "noprior": "mature",
    }
    assert t["declining"]["yoy_growth"] == pytest.approx(-0.2)
    assert t["noprior"]["yoy_growth"] is None


def test_churn_risk_own_gap_and_population_gap(cfg):
    base = dt.date(2024, 12, 31)
    rows = [
        # own gaps 10, 10 (median 10): recency 31 > 3 x 10 -> high
        ("own", "a", base - dt.timedelta(days=50), 5), ("own", "b", base - dt.timedelta(days=40), 5),
        ("own", "c", base - dt.timedelta(days=30), 5),
        # two orders: population median gap of all gaps (10, 10, 20) = 10; recency 16 > 15 -> medium
        ("few", "d", base - dt.timedelta(days=35), 5), ("few", "e", base - dt.timedelta(days=15), 5),
        ("low", "f", base, 5),  # recency 1 -> low
    ]
    t = by_id(table(rows, cfg))
    assert t["own"]["recency_days"] == 31 and t["own"]["churn_risk"] == "high"
    assert t["few"]["recency_days"] == 16 and t["few"]["churn_risk"] == "medium"
    assert t["low"]["churn_risk"] == "low"


def test_personas_first_rule_and_absent_columns(cfg):
    d = dt.date(2024, 6, 1)
    rows = [
        ("S", "a", d, 12_000_000, "线上", "经销商"),   # strategic beats e-commerce
        ("E", "b", d, 500_000, "B2B Platform", None),
        ("D", "c", d, 5_000_000, "offline", "一级经销商"),
        ("V", "d", d, 1000, "offline", "零售"),
        ("K", "e", d, 5_000_000, "offline", "零售"),   # key tier, no rule holds
    ]
    t = by_id(table(rows, cfg, roles=("channel", "customer_type")))
    assert {c: t[c]["persona"] for c in t} == {
        "S": "strategic account", "E": "e-commerce", "D": "channel distributor", "V": "value small", "K": None,
    }
    # without the channel/customer_type columns their rules are skipped
    t2 = by_id(table([r[:4] for r in rows], cfg))
    assert t2["E"]["persona"] == "value small" and t2["D"]["persona"] is None


def test_most_frequent_attribute_per_customer(cfg):
    d = dt.date(2024, 6, 1)
    rows = [("A", "1", d, 1, "North"), ("A", "2", d, 1, "South"), ("A", "3", d, 1, "South"),
            ("B", "4", d, 1, "West"), ("B", "5", d, 1, "East")]
    t = by_id(table(rows, cfg, roles=("region",)))
    assert t["A"]["region"] == "South" and t["B"]["region"] == "East"  # tie: alphabetically first


def test_custom_tiers(cfg):
    from segkit.config import Tier

    tiers = (Tier("high", "高", 100_000.0), Tier("mid", "中", 50_000.0), Tier("low", "低", None))
    rows = [("A", "1", dt.date(2024, 6, 1), 100_000), ("B", "2", dt.date(2024, 6, 1), 99_999.99),
            ("C", "3", dt.date(2024, 6, 1), 49_999.99)]
    t = by_id(table(rows, cfg, tiers=tiers))
    assert [t[c]["tier"] for c in "ABC"] == ["high", "mid", "low"]
