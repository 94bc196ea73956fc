"""What an analyst reads must be true, translated and printable (issue 23), on real data."""

from __future__ import annotations

import json

import polars as pl
import pytest

from conftest import dataset, run_cli


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quantile")
    proc = run_cli("segment", str(dataset("online_retail_non_uk.csv")), "-o", str(out), "--tiers", "quantile",
                   "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_value_at_risk_counts_only_high_risk_customers_when_recency_decides(quantile_run):
    out, doc = quantile_run
    # BG/NBD finds no dropout on this year of data: the recency rule decides churn_risk
    assert doc["clv"]["value_at_risk_rule"] == "recency"
    a = pl.read_csv(out / "assignments.csv", infer_schema_length=None)
    recent = pl.max_horizontal(pl.col("annual_spend").fill_null(0), pl.col("prior_annual_spend").fill_null(0),
                               pl.lit(0.0))
    want = {r["tier"]: r for r in a.group_by("tier").agg(
        pl.len().alias("customers"), recent.sum().alias("recent"),
        recent.filter(pl.col("churn_risk") == "high").sum().alias("high"),
        recent.filter(pl.col("churn_risk") == "medium").sum().alias("medium"),
        (pl.col("churn_risk") == "low").mean().alias("low_share")).iter_rows(named=True)}
    rows = doc["clv"]["value_at_risk"]
    assert [r["tier"] for r in rows] == [t["tier"] for t in doc["tiers"]]
    for r in rows:
        w = want[r["tier"]]
        assert r["customers"] == w["customers"]
        assert r["recent_value"] == pytest.approx(w["recent"], abs=0.01)
        assert r["value_at_risk"] == pytest.approx(w["high"], abs=0.01)
        assert r["medium_risk_value"] == pytest.approx(w["medium"], abs=0.01)
        if w["low_share"] > 0.5:  # a mostly-low-risk tier never has its whole recent value at risk
            assert r["value_at_risk"] < 0.5 * r["recent_value"]
    top = rows[0]
    assert top["high_risk_customers"] == 0 and top["value_at_risk"] == 0 and top["recent_value"] > 700_000
