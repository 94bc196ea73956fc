"""End to end on real exports: every number in assignments.csv against an independent computation."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

import pytest

from conftest import SAMPLE_DIR, dataset, run_cli
from reference import clv_churn, compute, most_frequent

COLUMNS = ["first_order_date", "last_order_date", "recency_days", "frequency", "monetary", "annual_spend",
           "prior_annual_spend", "yoy_growth", "tier", "r_score", "f_score", "m_score", "rfm_score",
           "rfm_segment", "value_class", "lifecycle", "churn_risk"]


def _read_assignments(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["customer_id"]: row for row in csv.DictReader(fh)}


def _same(got: str, want) -> bool:
    if want is None:
        return got == ""
    if isinstance(want, dt.date):
        return got == want.isoformat()
    if isinstance(want, float):
        return got != "" and math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-6)
    return got == str(want)


def _compare(got: dict, want: dict, out=None, lines=None) -> None:
    if out is not None:
        import json

        want = clv_churn(want, lines, got, json.loads((out / "summary.json").read_text(encoding="utf-8")))
    assert set(got) == set(want), "one row per customer, the same customers"
    mismatches = [
        (cid, col, got[cid][col], want[cid][col])
        for cid in want for col in COLUMNS if not _same(got[cid][col], want[cid][col])
    ]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


def online_retail_lines(path):
    lines, rejected, countries = [], 0, []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["CustomerID"]:
                rejected += 1
                continue
            cid = str(int(float(row["CustomerID"])))
            d = dt.date.fromisoformat(row["InvoiceDate"][:10])
            lines.append((cid, row["InvoiceNo"], d, float(row["Quantity"]) * float(row["UnitPrice"])))
            countries.append((cid, row["Country"]))
    return lines, rejected, countries


def _segment_and_compare(path: Path, out: Path, want: dict, lines: list, *args: str) -> dict:
    """Run `segkit segment` on path and compare its assignments with the reference's; returns them."""
    proc = run_cli("segment", str(path), "-o", str(out), "--no-report", "-q", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    got = _read_assignments(out / "assignments.csv")
    _compare(got, want, out, lines)
    return got


def test_online_retail_non_uk_matches_reference(tmp_path):
    path = dataset("online_retail_non_uk.csv")
    lines, rejected, countries = online_retail_lines(path)
    want = compute(lines)
    out = tmp_path / "out"
    got = _segment_and_compare(path, out, want, lines)
    region = most_frequent(countries)
    assert all(got[c]["region"] == region[c] for c in got)
    with open(out / "rejected_rows.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == rejected == 1480
    assert {r["reason"] for r in rows} == {"missing customer_id"}


def test_online_retail_full_year_as_of_matches_reference(tmp_path):
    """A chosen as_of: later transactions are excluded and counted."""
    path = dataset("online_retail_non_uk.csv")
    lines, _, _ = online_retail_lines(path)
    as_of = dt.date(2011, 9, 1)
    want = compute(lines, as_of=as_of)
    out = tmp_path / "out"
    proc = run_cli("segment", str(path), "-o", str(out), "--no-report", "-q", "--as-of", "2011-09-01")
    assert proc.returncode == 0, proc.stderr.decode()
    _compare(_read_assignments(out / "assignments.csv"), want, out, lines)
    import json

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["data_quality"]["excluded_after_as_of"] == sum(1 for ln in lines if ln[2] >= as_of)


def _zh_amount(text: str) -> float:
    neg = text.startswith("-")
    v = float(text.lstrip("-").replace("￥", "").replace(",", ""))
    return -v if neg else v


def _zh_date(text: str) -> dt.date:
    y, m, d = map(int, re.findall(r"\d+", text))
    return dt.date(y, m, d)


def test_shipped_chinese_sample_matches_reference(tmp_path):
    path = SAMPLE_DIR / "orders_zh.csv"
    rows = list(csv.reader(path.read_bytes().decode("gb18030").splitlines()))
    header = rows[2]
    body = [dict(zip(header, r)) for r in rows[3:] if r[0] != "合计"]
    assert len(body) == len(rows) - 4
    lines = [(r["客户编码"], r["单据编号"], _zh_date(r["单据日期"]), _zh_amount(r["价税合计"])) for r in body]
    want = compute(lines)
    got = _segment_and_compare(path, tmp_path / "out", want, lines)
    assert all(cid.startswith("000") for cid in got), "leading zeros kept"
    names = most_frequent((r["客户编码"], r["客户名称"]) for r in body)
    assert all(got[c]["customer_name"] == names[c] for c in got)


@pytest.fixture(scope="module")
def excel_sample_lines():
    """The order lines of the shipped workbook, read with openpyxl (not segkit's reader)."""
    import openpyxl

    ws = openpyxl.load_workbook(SAMPLE_DIR / "orders.xlsx", read_only=True).active
    it = ws.iter_rows(values_only=True)
    header = next(it)
    body = [dict(zip(header, r)) for r in it]
    return [(r["customer_id"], r["order_id"], r["order_date"].date(), float(r["amount"])) for r in body]


@pytest.mark.parametrize("as_of", ["2026-06-30", "2025-12-31"])
def test_shipped_excel_sample_matches_reference(tmp_path, as_of, excel_sample_lines):
    path, lines = SAMPLE_DIR / "orders.xlsx", excel_sample_lines
    want = compute(lines, as_of=dt.date.fromisoformat(as_of))
    _segment_and_compare(path, tmp_path / "out", want, lines, "--as-of", as_of)
