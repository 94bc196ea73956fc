"""What the analyst is told: coverage, currency, tier fit, plausible dates, row counts, customer-level input.

Expectations are computed here from the input files with polars / csv / scipy, never copied from
segkit's output.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

import polars as pl
import pytest
from conftest import dataset, run_cli, write_csv

from segkit import config, pipeline
from segkit.result import summary
from segkit.errors import DataError

DEC = "online_retail_2010-12.csv"
UCI = "uci_wholesale_customers.csv"
SPEND = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]


def load(**over):
    return config.load(None, {"input.max_bad_rows": 0.4, **over}, use_env=False)


@pytest.fixture(scope="module")
def dec():
    """The December 2010 file, run once (no clustering): 23 days of data."""
    result = pipeline.run(str(dataset(DEC)), load(), cluster=False)
    return result, summary(result)


@pytest.fixture(scope="module")
def dec_lines():
    """The December file's usable lines, read independently: rows with a customer id."""
    df = pl.read_csv(dataset(DEC), infer_schema=False).filter(pl.col("CustomerID").is_not_null())
    return df.with_columns(pl.col("InvoiceDate").str.slice(0, 10).str.to_date().alias("d"),
                           (pl.col("Quantity").cast(pl.Float64) * pl.col("UnitPrice").cast(pl.Float64)).alias("amt"))


def codes(doc):
    return [w["code"] for w in doc["warnings"]]


# --- coverage -------------------------------------------------------------------------------------

def test_short_coverage_leaves_yoy_and_lifecycle_empty_with_the_reason(dec, dec_lines):
    result, doc = dec
    cov = doc["coverage"]
    assert cov["first_date"] == str(dec_lines["d"].min()) and cov["last_date"] == str(dec_lines["d"].max())
    assert cov["full_windows"] == 0 and cov["yoy_available"] is False and "yoy_growth" in cov["reason"]
    a = result.assignments
    assert a["yoy_growth"].null_count() == a.height  # no +2,805% growth from a 23-day file
    assert set(a["lifecycle"].drop_nulls().unique()) <= {"lapsed"}
    assert "short_coverage" in codes(doc)
    assert all(set(w) >= {"code", "message"} for w in doc["warnings"])


def test_a_prior_window_of_nine_days_is_not_a_prior_year():
    """Online Retail (non-UK) runs 2010-12-01 .. 2011-12-09: as of 2011-12-10 the prior window
    (2009-12-10 .. 2010-12-09) holds 9 days of data, which must not be shown as prior-year spend."""
    path = dataset("online_retail_non_uk.csv")
    lines = pl.read_csv(path, infer_schema=False).filter(pl.col("CustomerID").is_not_null())
    early = lines.filter(pl.col("InvoiceDate").str.slice(0, 10) <= "2010-12-09")["CustomerID"].n_unique()
    assert early > 0  # customers who did buy in those 9 days
    result = pipeline.run(str(path), config.load(None, use_env=False), cluster=False)
    doc = summary(result)
    assert doc["coverage"]["full_windows"] == 1 and doc["coverage"]["yoy_available"] is False
    a = result.assignments
    assert a["prior_annual_spend"].null_count() == a.height
    assert a["yoy_growth"].null_count() == a.height


def test_two_full_windows_keep_yoy(tmp_path):
    # as_of 2024-06-02: tier window 2023-06-03 .. 2024-06-01, prior 2022-06-04 .. 2023-06-02
    rows = [["A", "1", "2022-01-10", "100"], ["A", "2", "2023-05-01", "200"], ["A", "3", "2024-06-01", "300"],
            ["B", "4", "2024-01-01", "50"]]
    path = write_csv(tmp_path / "o.csv", ["customer", "order", "date", "amount"], rows)
    result = pipeline.run(str(path), config.load(None, use_env=False), cluster=False)
    doc = summary(result)
    assert doc["coverage"]["full_windows"] == 2 and doc["coverage"]["reason"] is None
    a = {r["customer_id"]: r for r in result.assignments.to_dicts()}
    assert a["A"]["yoy_growth"] == pytest.approx(300 / 200 - 1) and a["A"]["prior_annual_spend"] == 200
    assert a["A"]["lifecycle"] == "growing" and a["B"]["lifecycle"] == "new"
    assert "short_coverage" not in codes(doc)


# --- tiers ----------------------------------------------------------------------------------------

def test_concentration_warning_suggests_a_table_that_fits(dec, tmp_path):
    result, doc = dec
    assert "tier_concentration" in codes(doc)
    suggested = doc["tiering"]["concentration"]["suggested_tiers"]
    mins = [s["min"] for s in suggested if "min" in s]
    assert mins == sorted(mins, reverse=True) and len(set(mins)) == len(mins)
    # the suggested table, used as the config's tiers, leaves no tier above 90%
    spend = result.assignments["annual_spend"]
    bounds = mins + [float("-inf")]
    counts = [int(((spend >= lo) & (spend < hi)).sum()) for lo, hi in zip(bounds, [float("inf")] + mins)]
    assert sum(counts) == spend.len() and max(counts) / spend.len() < 0.9


def test_quantile_tiers_follow_the_spend_shares(dec_lines):
    result = pipeline.run(str(dataset(DEC)), load(**{"tiering.scheme": "quantile"}), cluster=False)
    a = result.assignments
    spend = a["annual_spend"].clip(lower_bound=0)
    total = spend.sum()
    for name, share in zip(["strategic", "key", "growth", "regular"], [0.5, 0.8, 0.95, 0.99]):
        top = a.filter(pl.col("tier").is_in(["strategic", "key", "growth", "regular"][: ["strategic", "key", "growth", "regular"].index(name) + 1]))
        inside = top["annual_spend"].sum()
        assert inside >= share * total - 1e-6  # the tiers up to this one make the share ...
        smallest = top["annual_spend"].min()
        assert inside - smallest < share * total  # ... and not without their smallest member
    assert "tier_concentration" not in codes(summary(result))


def test_retail_preset_uses_spend_orders_and_repurchase(tmp_path):
    rows = []
    day = dt.date(2024, 1, 5)
    for i in range(13):  # A: 13 orders over 7 months, 130,000
        rows.append(["A", f"a{i}", str(day + dt.timedelta(days=16 * i)), "10000"])
    rows += [["B", "b1", "2024-03-01", "75000"], ["B", "b2", "2024-03-02", "75000"]]  # 150k, 2 orders
    rows += [["C", "c1", "2024-05-01", "60000"], ["D", "d1", "2024-05-01", "10000"]]
    path = write_csv(tmp_path / "r.csv", ["customer", "order", "date", "amount"], rows)
    result = pipeline.run(str(path), config.load(None, {"tiering.scheme": "retail"}, use_env=False), cluster=False)
    tiers = dict(zip(result.assignments["customer_id"], result.assignments["tier"]))
    assert tiers == {"A": "A", "B": "B", "C": "B", "D": "C"}
    assert [t["tier"] for t in summary(result)["tiers"]] == ["A", "B", "C"]


def test_tiers_option_and_bad_value(tmp_path):
    path = write_csv(tmp_path / "o.csv", ["customer", "date", "amount"], [["A", "2024-01-01", "5"]])
    proc = run_cli("segment", str(path), "-o", str(tmp_path / "o"), "--tiers", "deciles", "-q")
    assert proc.returncode == 2 and b"--tiers deciles" in proc.stderr


# --- dates, row counts ----------------------------------------------------------------------------

def test_years_in_the_date_column_are_refused(tmp_path):
    rows = [[f"C{i}", str(2015 + i % 5), "100"] for i in range(30)]
    path = write_csv(tmp_path / "y.csv", ["customer", "date", "amount"], rows)
    proc = run_cli("segment", str(path), "-o", str(tmp_path / "o"), "-q")
    assert proc.returncode == 65
    err = proc.stderr.decode()
    assert "1990-01-01" in err and "Excel serial" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_few_implausible_dates_are_left_out_and_warned(tmp_path):
    rows = [[f"C{i % 20}", f"2024-0{1 + i % 9}-1{i % 10}", "100"] for i in range(99)] + [["C1", "2099-01-01", "5"]]
    path = write_csv(tmp_path / "f.csv", ["customer", "date", "amount"], rows)
    result = pipeline.run(str(path), config.load(None, use_env=False), cluster=False)
    doc = summary(result)
    assert "implausible_dates" in codes(doc)
    assert doc["data_quality"]["excluded_implausible_dates"] == 1
    assert doc["data_quality"]["used_rows"] == 99
    assert doc["as_of"] < "2099-01-01"


def test_used_rows_leaves_out_rows_after_as_of_and_zero_lines_are_not_returns(tmp_path):
    rows = [["A", "1", "2024-01-01", "10"], ["A", "2", "2024-02-01", "10"], ["A", "3", "2024-03-01", "10"],
            ["Z", "4", "2024-01-15", "0.00"], ["Z", "5", "2024-01-20", "0"],
            ["R", "6", "2024-01-10", "-30"]]
    path = write_csv(tmp_path / "z.csv", ["customer", "order", "date", "amount"], rows)
    cfg = config.load(None, {"analysis.as_of": "2024-02-15"}, use_env=False)
    doc = summary(pipeline.run(str(path), cfg, cluster=False))
    q = doc["data_quality"]
    assert q["excluded_after_as_of"] == 1 and q["used_rows"] == 5
    assert doc["customers_without_purchase"] == 2
    assert doc["customers_returns_only"] == 1 and doc["customers_zero_amount_only"] == 1


def test_too_many_bad_rows_message_gives_a_value_that_works(tmp_path):
    src = dataset(DEC)
    proc = run_cli("segment", str(src), "-o", str(tmp_path / "o"), "-q", "--no-report")
    assert proc.returncode == 65
    n_bad = pl.read_csv(src, infer_schema=False)["CustomerID"].null_count()
    n_all = pl.read_csv(src, infer_schema=False).height
    import math

    value = f"{math.ceil(n_bad / n_all * 100) / 100:g}"
    assert f"--max-bad-rows {value} " in proc.stderr.decode()
    ok = run_cli("segment", str(src), "-o", str(tmp_path / "o"), "-q", "--no-report", "--max-bad-rows", value)
    assert ok.returncode == 0, ok.stderr.decode()


# --- currency -------------------------------------------------------------------------------------

def test_currency_detected_from_symbols_and_shown(tmp_path):
    rows = [["A", "2024-01-01", "￥1,200.00"], ["B", "2024-01-02", "￥300.50"], ["C", "2024-01-03", "￥80"]]
    path = write_csv(tmp_path / "c.csv", ["客户编码", "日期", "金额"], rows)
    out = tmp_path / "o"
    proc = run_cli("segment", str(path), "-o", str(out), "--k", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["currency"] == "CNY" and doc["currency_source"] == "amounts"
    assert b"Currency: CNY" in proc.stderr
    assert "CNY" in (out / "report.html").read_text(encoding="utf-8")


def test_currency_from_config_wins(dec):
    result = pipeline.run(str(dataset(DEC)), load(**{"output.currency": "gbp"}), cluster=False)
    assert summary(result)["currency"] == "GBP"
    assert dec[1]["currency"] is None  # the file names no currency: nothing is guessed


# --- customer-level input -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uci():
    result = pipeline.run(str(dataset(UCI)), config.load(None, use_env=False))
    return result, summary(result)


def test_customer_table_is_detected_and_spend_is_the_row_sum(uci):
    result, doc = uci
    with open(dataset(UCI), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert doc["input_kind"] == "customers" and doc["customers"] == len(rows) == 440
    a = {r["customer_id"]: r for r in result.assignments.to_dicts()}
    for i in (0, 1, 217, 439):  # the row position is the id
        assert a[str(i + 1)]["annual_spend"] == pytest.approx(sum(float(rows[i][c]) for c in SPEND))
        assert a[str(i + 1)]["channel"] == rows[i]["Channel"]


def test_customer_table_supports_tiers_clusters_validation_and_names_the_rest(uci):
    from scipy.stats import chi2_contingency

    result, doc = uci
    a = result.assignments
    assert a["tier"].null_count() == 0 and a["m_score"].null_count() == 0
    assert a["rfm_segment"].null_count() == a.height  # R and F are not in the file
    for col in ("lifecycle", "churn_risk", "yoy_growth", "first_order_date"):
        assert a[col].null_count() == a.height
    assert doc["clusters"]["k"] >= 2 and doc["clusters"]["features"] == [f"log_{c}" for c in SPEND]
    tab = a.group_by("cluster", "region").len().pivot(on="region", index="cluster", values="len").fill_null(0)
    chi2, p, dof, _ = chi2_contingency(tab.drop("cluster").to_numpy())
    assert doc["validation"]["chi2"]["region"]["chi2"] == pytest.approx(chi2)
    assert doc["validation"]["chi2"]["region"]["p"] == pytest.approx(p)
    w = next(w for w in doc["warnings"] if w["code"] == "customer_input")
    assert "CLV" in w["message"] and "lifecycle" in w["message"] and "migration" in w["message"]


def test_a_table_without_dates_has_no_as_of_and_shows_the_chi_square(uci, tmp_path):
    """No date in the file: no as_of and no tier window (never today's date); the terminal shows
    cluster x channel, the one test of the clusters that is not circular."""
    result, doc = uci
    assert doc["as_of"] is None and doc["windows"] is None
    proc = run_cli("segment", str(dataset(UCI)), "-o", str(tmp_path / "u"), "--no-report")
    err = proc.stderr.decode()
    assert proc.returncode == 0 and str(dt.date.today()) not in err and "no as_of" in err
    p = doc["validation"]["chi2"]["channel"]["p"]
    assert f"cluster × channel: χ² {doc['validation']['chi2']['channel']['chi2']:.1f}, dof 1, p = {p:.2g}" in err


def test_customer_table_with_id_orders_and_last_date(tmp_path):
    rows = [["K1", "120000", "24", "2024-05-30"], ["K2", "8000", "2", "2023-11-02"], ["K3", "45000", "9", "2024-04-01"],
            ["K4", "3000", "1", "2022-12-24"], ["K5", "64000", "14", "2024-05-02"]]
    path = write_csv(tmp_path / "k.csv", ["客户编码", "年销售额", "订单数", "最近下单日期"], rows)
    cfg = config.load(None, {"input.kind": "customers", "analysis.as_of": "2024-06-01"}, use_env=False)
    result = pipeline.run(str(path), cfg, cluster=False)
    a = {r["customer_id"]: r for r in result.assignments.to_dicts()}
    assert a["K1"]["recency_days"] == 2 and a["K4"]["recency_days"] == (dt.date(2024, 6, 1) - dt.date(2022, 12, 24)).days
    assert a["K1"]["frequency"] == 24 and a["K1"]["rfm_segment"] is not None
    assert a["K1"]["r_score"] == 5 and a["K4"]["r_score"] == 1  # by the SPEC formula on 5 customers


def test_orders_kind_on_a_customer_table_is_an_error(tmp_path):
    proc = run_cli("segment", str(dataset(UCI)), "-o", str(tmp_path / "o"), "--input-kind", "orders", "-q")
    assert proc.returncode == 65 and b"no customer_id column" in proc.stderr


def test_an_order_export_missing_its_id_is_not_read_as_customers(tmp_path):
    path = write_csv(tmp_path / "o.csv", ["Date", "Amount"], [["2024-01-01", "5"], ["2024-01-02", "7"]])
    proc = run_cli("segment", str(path), "-o", str(tmp_path / "o"), "-q")
    assert proc.returncode == 65 and b"no customer_id column" in proc.stderr


def test_check_dates_refuses_with_typed_error():
    from segkit.customers.dates import check_dates

    lines = pl.DataFrame({"order_date": [dt.date(1900, 5, 1), dt.date(2020, 1, 1)], "n": [5, 5]})
    with pytest.raises(DataError, match="1900-05-01"):
        check_dates(lines, config.load(None, use_env=False), "x.csv")


def test_customer_table_reports_say_what_is_missing(uci, tmp_path):
    from segkit.outputs.staging import StagedDir
    from segkit.outputs.report import write_reports

    result, doc = uci
    assert doc["clv"] == {"skipped_reason": "a customer-level table has no purchase history"}
    assert "clv_skipped" in codes(doc)
    a = result.assignments
    assert a["p_alive"].null_count() == a.height
    assert a.columns.index("p_alive") == a.columns.index("churn_risk") + 1
    staged = StagedDir(tmp_path)
    write_reports(result, staged)
    staged.commit()
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "customer_input" in html and "no purchase history" in html
