"""Gross profit per customer, by tier and persona; the tier outlook (predicted_tier, outlook.csv).

Expectations are computed by hand from the small files written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_cli

# C1: growth (1,200,000.10 net), C2: regular (350,000.33), C3: scattered (99.99)
COST_ROWS = [
    ("C1", "2025-01-10", "O1", "1000000.10", "600000.05"),
    ("C1", "2025-03-05", "O2", "250000.00", "100000.00"),
    ("C1", "2025-03-20", "O3", "-50000.00", "-30000.00"),  # a return: its cost comes back too
    ("C2", "2025-02-01", "O4", "350,000.33", "360000.00"),  # sold at a loss; thousands separator
    ("C3", "2025-04-01", "O5", "99.99", "0.01"),
]


def _write(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _run(tmp_path: Path, src: Path) -> tuple[dict, dict[str, dict[str, str]]]:
    out = tmp_path / "out"
    r = run_cli("segment", str(src), "-o", str(out), "--no-report", "--quiet")
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with (out / "assignments.csv").open(encoding="utf-8") as f:
        rows = {row["customer_id"]: row for row in csv.DictReader(f)}
    return doc, rows


def test_cost_column_gives_gross_profit_to_the_cent(tmp_path: Path) -> None:
    src = _write(tmp_path / "orders.csv", ["customer", "date", "order no", "amount", "cost"], COST_ROWS)
    doc, rows = _run(tmp_path, src)
    assert float(rows["C1"]["gross_profit"]) == pytest.approx(530000.05, abs=1e-9)
    assert float(rows["C2"]["gross_profit"]) == pytest.approx(-9999.67, abs=1e-9)
    assert float(rows["C3"]["gross_profit"]) == pytest.approx(99.98, abs=1e-9)
    assert float(rows["C1"]["margin"]) == pytest.approx(530000.05 / 1200000.10, rel=1e-12)
    header = list(rows["C1"])
    assert header.index("margin") == header.index("gross_profit") + 1
    assert header.index("gross_profit") > header.index("churn_risk")
    profit = doc["profit"]
    total = 530000.05 - 9999.67 + 99.98
    assert profit["gross_profit"] == pytest.approx(total, abs=1e-6)
    by_tier = {t["tier"]: t for t in profit["tiers"]}
    assert by_tier["growth"]["gross_profit"] == pytest.approx(530000.05, abs=1e-6)
    assert by_tier["growth"]["share_of_profit"] == pytest.approx(530000.05 / total)
    assert by_tier["regular"]["gross_profit"] == pytest.approx(-9999.67, abs=1e-6)
    assert by_tier["scattered"]["customers"] == 1
    assert by_tier["strategic"]["gross_profit"] == 0
    # one customer of three holds more than 80% of the profit
    assert profit["pareto_profit"] == {"customers_for_50": pytest.approx(1 / 3), "customers_for_80": pytest.approx(1 / 3)}
    # spend: C1 holds 1,200,000.10 of 1,550,100.42 (77%): 50% with one, 80% needs two
    assert profit["pareto_spend"] == {"customers_for_50": pytest.approx(1 / 3), "customers_for_80": pytest.approx(2 / 3)}
    personas = {p["persona"]: p for p in profit["personas"]}
    assert personas["value small"]["gross_profit"] == pytest.approx(-9999.67 + 99.98, abs=1e-6)


def test_gross_profit_column_is_summed_as_given(tmp_path: Path) -> None:
    rows = [(c, d, o, a, f"{float(a.replace(',', '')) - float(k):.2f}") for c, d, o, a, k in COST_ROWS]
    src = _write(tmp_path / "orders.csv", ["客户编码", "日期", "单号", "金额", "毛利"], rows)
    _, out = _run(tmp_path, src)
    assert float(out["C1"]["gross_profit"]) == pytest.approx(530000.05, abs=1e-9)
    assert float(out["C2"]["gross_profit"]) == pytest.approx(-9999.67, abs=1e-9)


def test_unparsable_cost_rejects_the_row(tmp_path: Path) -> None:
    rows = [*COST_ROWS, ("C3", "2025-04-01", "O6", "10.00", "n/a")]
    src = _write(tmp_path / "orders.csv", ["customer", "date", "order no", "amount", "cost"], rows)
    out = tmp_path / "out"
    r = run_cli("segment", str(src), "-o", str(out), "--no-report", "--quiet", "--max-bad-rows", "0.5")
    assert r.returncode == 0, r.stderr
    rejected = (out / "rejected_rows.csv").read_text(encoding="utf-8")
    assert "unparsable cost" in rejected
    with (out / "assignments.csv").open(encoding="utf-8") as f:
        c3 = next(row for row in csv.DictReader(f) if row["customer_id"] == "C3")
    assert float(c3["monetary"]) == pytest.approx(99.99, abs=1e-9)


def test_without_cost_no_profit_columns(tmp_path: Path) -> None:
    rows = [r[:4] for r in COST_ROWS]
    src = _write(tmp_path / "orders.csv", ["customer", "date", "order no", "amount"], rows)
    doc, out = _run(tmp_path, src)
    assert "gross_profit" not in out["C1"] and "margin" not in out["C1"]
    assert "profit" not in doc


@pytest.mark.spark
def test_spark_engine_refuses_a_cost_column(tmp_path: Path) -> None:
    src = _write(tmp_path / "orders.csv", ["customer", "date", "order no", "amount", "cost"], COST_ROWS)
    r = run_cli("segment", str(src), "--engine", "spark", "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "'cost' (cost): gross profit is not computed by the spark engine" in err
    assert "--engine polars" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_reports_show_profit_beside_spend(tmp_path: Path) -> None:
    import openpyxl

    src = _write(tmp_path / "orders.csv", ["customer", "date", "order no", "amount", "cost"], COST_ROWS)
    out = tmp_path / "out"
    r = run_cli("segment", str(src), "-o", str(out), "--lang", "zh")
    assert r.returncode == 0, r.stderr
    assert "毛利 520,100.36（毛利率 33.6%）" in r.stderr.decode()
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="profit">'):]
    section = section[:section.index("</section>")]
    assert section.count("<svg") == 2  # the spend Pareto and the profit Pareto side by side
    assert "各层级毛利" in section and "530,000" in section and ">-10,000<" in section
    ws = openpyxl.load_workbook(out / "report.xlsx")["客户分层"]
    cells = [c.value for row in ws.iter_rows() for c in row if c.value is not None]
    at = cells.index("各层级毛利")
    assert 530000.05 in cells[at:] and -9999.67 in cells[at:]


BOUNDS = [("strategic", 10_000_000), ("key", 3_000_000), ("growth", 1_000_000), ("regular", 300_000)]
RANK = {name: i for i, name in enumerate(["strategic", "key", "growth", "regular", "scattered"])}


def _tier_by_hand(value: float) -> str:
    return next((name for name, low in BOUNDS if value >= low), "scattered")


def test_predicted_tier_and_outlook_csv(tmp_path: Path) -> None:
    from conftest import SAMPLE_DIR

    out = tmp_path / "out"
    r = run_cli("segment", str(SAMPLE_DIR / "orders_zh.csv"), "-o", str(out), "-q", "--lang", "zh")
    assert r.returncode == 0, r.stderr
    with (out / "assignments.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header.index("predicted_tier") == header.index("predicted_revenue") + 1
    movers = {}
    for row in rows:
        assert row["predicted_tier"] == _tier_by_hand(float(row["predicted_revenue"])), row["customer_id"]
        if row["predicted_tier"] != row["tier"]:
            up = RANK[row["predicted_tier"]] < RANK[row["tier"]]
            movers[row["customer_id"]] = (row["tier"], row["predicted_tier"], "up" if up else "down")
    assert movers  # the sample has customers on their way up and down
    with (out / "outlook.csv").open(encoding="utf-8") as f:
        outlook = list(csv.DictReader(f))
    assert list(outlook[0]) == ["customer_id", "customer_name", "tier", "predicted_tier", "direction", "p_alive",
                                "predicted_revenue", "annual_spend"]
    assert {o["customer_id"]: (o["tier"], o["predicted_tier"], o["direction"]) for o in outlook} == movers
    assert len(outlook) == len(movers)
    doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert doc["outlook"]["upgrade"] == sum(1 for m in movers.values() if m[2] == "up")
    assert doc["outlook"]["downgrade"] == sum(1 for m in movers.values() if m[2] == "down")
    import hashlib
    assert doc["outputs"]["outlook.csv"] == hashlib.sha256((out / "outlook.csv").read_bytes()).hexdigest()
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="outlook">'):]
    section = section[:section.index("</section>")]
    ups = sum(1 for m in movers.values() if m[2] == "up")
    assert f"升级候选 {ups} 个" in section and "主要升级候选客户" in section
    first_up = next(o for o in outlook if o["direction"] == "up")
    assert f"<td>{first_up['customer_id']}</td>" in section


def test_backtest_scores_the_outlook_against_same_tier_as_last_year() -> None:
    import datetime as dt

    import polars as pl

    from segkit.config import Tier
    from segkit.models.outlook import backtest_score

    tiers = (Tier("big", "大", 1000.0), Tier("mid", "中", 100.0), Tier("small", "小", None))
    start = dt.date(2025, 1, 1)
    day = dt.date(2024, 6, 1)  # inside the year before the holdout
    last_year = {"A": 50.0, "B": 500.0, "C": 500.0, "D": 2000.0, "E": 50.0}
    lines = pl.DataFrame({"customer_id": list(last_year), "order_date": [day] * 5,
                          "amount": [round(v * 1_000_000) for v in last_year.values()]})
    # predicted revenue = purchases x value: A 200 (up to mid), B 1500 (up to big), C 500 (same),
    # D 50 (down to small), E NaN (no prediction)
    scored = pl.DataFrame({"customer_id": ["A", "B", "C", "D", "E"],
                           "predicted": [2.0, 3.0, 5.0, 1.0, float("nan")],
                           "expected_purchase_value": [100.0, 500.0, 100.0, 50.0, 10.0],
                           # actual: A mid (up as predicted), B mid (stayed), C big (moved up, not
                           # predicted), D big (stayed), E small (no prediction: not scored)
                           "actual_revenue": [150.0, 800.0, 1200.0, 3000.0, 0.0]})
    got = backtest_score(scored, lines, start, 365, tiers)
    assert got == {"customers": 4, "predicted_to_move": 3, "predicted_up": 2, "predicted_down": 1,
                   "moved_as_predicted": 1, "reached_predicted_tier": 1, "actually_moved": 2,
                   "model_tier_right": 1, "naive_tier_right": 2}  # naive: B and D
    assert "skipped_reason" in backtest_score(scored, lines, start, 90, tiers)
