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
    a = pl.read_csv(out / "assignments.csv", infer_schema_length=None, schema_overrides={"prior_annual_spend": pl.Float64})
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


TIER_ORDER = ["strategic", "key", "growth", "regular", "scattered"]


def _tier_at(spend: float, bounds: list[dict]) -> str:
    for b in bounds:
        if b["min"] is not None and spend >= b["min"]:
            return b["name"]
    return bounds[-1]["name"]


def test_migration_warns_when_tier_bounds_moved_and_shows_moves_at_the_earlier_bounds(tmp_path):
    path = str(dataset("online_retail_non_uk.csv"))
    early, late, again = tmp_path / "early", tmp_path / "late", tmp_path / "again"
    assert run_cli("segment", path, "-o", str(early), "--as-of", "2011-06-01", "--tiers", "quantile",
                   "--no-report", "-q").returncode == 0
    proc = run_cli("segment", path, "-o", str(late), "--tiers", "quantile", "--previous", str(early), "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert b"[tier_bounds_changed]" in proc.stderr
    doc = json.loads((late / "summary.json").read_text(encoding="utf-8"))
    assert "tier_bounds_changed" in [w["code"] for w in doc["warnings"]]
    mig = doc["migration"]
    prev_bounds = json.loads((early / "summary.json").read_text(encoding="utf-8"))["tiering"]["tiers"]
    assert mig["tier_bounds"]["changed"] and mig["tier_bounds"]["previous"][0]["min"] == prev_bounds[0]["min"]
    # the moves at the earlier bounds, recomputed here from the two assignments files
    before = dict(pl.read_csv(early / "assignments.csv", infer_schema_length=None)
                  .select("customer_id", "tier").iter_rows())
    now = pl.read_csv(late / "assignments.csv", infer_schema_length=None)
    want = {"up": 0, "down": 0, "same": 0, "new": 0}
    for cid, spend in now.select("customer_id", "annual_spend").iter_rows():
        if cid not in before:
            want["new"] += 1
            continue
        a, b = TIER_ORDER.index(before[cid]), TIER_ORDER.index(_tier_at(spend, prev_bounds))
        want["up" if b < a else "down" if b > a else "same"] += 1
    assert mig["at_previous_bounds"]["changes"] == want
    assert want != mig["changes"]  # the quantile bounds moved: the plain moves differ
    # the same bounds again: no warning, no second table
    proc = run_cli("segment", path, "-o", str(again), "--tiers", "quantile", "--previous", str(late), "--no-report", "-q")
    doc = json.loads((again / "summary.json").read_text(encoding="utf-8"))
    assert "tier_bounds_changed" not in [w["code"] for w in doc["warnings"]]
    assert doc["migration"]["at_previous_bounds"] is None and not doc["migration"]["tier_bounds"]["changed"]


def test_backtest_figures_are_on_the_terminal_and_its_chart_axis_fits_the_data(tmp_path):
    from segkit.outputs.report import svg

    proc = run_cli("segment", str(dataset("online_retail_non_uk.csv")), "-o", str(tmp_path), "--backtest", "90",
                   "--no-report")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    bt = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["clv"]["backtest"]
    tot = bt["totals"]
    assert f"predicted {tot['predicted_purchases']:,.0f}, actual {tot['actual_purchases']:,}" in err
    assert f"mean absolute error per customer: {bt['mae_per_customer']:.3f} (naive rule {bt['naive_mae_per_customer']:.3f}" in err
    assert "Calibration by repeat purchases" in err
    for row in bt["calibration_table"]:
        assert f"{row['actual_mean']:.2f}" in err
    rows = bt["calibration_table"]
    chart = svg.grouped_bars([r["repeat_purchases"] for r in rows], ["p", "a"],
                             [[r["predicted_mean"], r["actual_mean"]] for r in rows], title="t")
    ticks = [float(x["text"]) for x in chart["texts"] if x.get("cls") == "tick"]
    peak = max(max(r["predicted_mean"], r["actual_mean"]) for r in rows)
    assert min(ticks) == 0 and peak <= max(ticks) < 1.5 * peak + 1


RECENCY_WORDS = ["recent", "cooling", "dormant"]


@pytest.mark.parametrize("name,k", [("orders_zh.csv", "auto"), ("online_retail_non_uk.csv", "5")])
def test_cluster_labels_tell_clusters_apart_and_follow_their_means(tmp_path, name, k):
    from conftest import SAMPLE_DIR

    path = SAMPLE_DIR / name if name == "orders_zh.csv" else dataset(name)
    assert run_cli("segment", str(path), "-o", str(tmp_path), "--k", k, "--no-report", "-q").returncode == 0
    profiles = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["clusters"]["profiles"]
    labels = [p["label"] for p in profiles]
    assert len(set(labels)) == len(labels) and len({p["label_zh"] for p in profiles}) == len(labels)
    level = {p["cluster"]: RECENCY_WORDS.index(next(w for w in RECENCY_WORDS if w in p["label"])) for p in profiles}
    for a in profiles:
        for b in profiles:
            if level[a["cluster"]] < level[b["cluster"]]:  # a "more recent" word means a smaller mean recency
                assert a["mean_recency_days"] < b["mean_recency_days"]
    if name == "orders_zh.csv":  # mean recency 49 vs 171 days: no longer both "cooling"
        assert [level[p["cluster"]] for p in profiles] == [0, 2]


def test_table_at_80_columns_keeps_ids_and_money_whole_and_shortens_names_first():
    from conftest import SAMPLE_DIR

    path = SAMPLE_DIR / "orders_zh.csv"
    proc = run_cli("segment", str(path), "-o", "-", "-f", "table", "-q", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.decode()
    full = pl.read_csv(run_cli("segment", str(path), "-o", "-", "-q").stdout, infer_schema=False)
    lines = [ln for ln in table.splitlines() if ln.startswith("│")]
    assert len(lines) == full.height and all(len(ln) <= 80 for ln in table.splitlines())
    for line, row in zip(lines, full.iter_rows(named=True)):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == row["customer_id"]
        assert f"{float(row['annual_spend']):,.2f}" in cells
    assert any("…" in ln.split("│")[2] for ln in lines)  # long names are what is shortened
    assert b"left out at 80 columns" in proc.stderr


def test_movers_change_is_formatted_and_rejected_rows_keep_the_whole_input_row(tmp_path):
    from segkit.outputs.report.html import fmt_signed

    assert fmt_signed(1468513.456) == "+1,468,513.46" and fmt_signed(-4288.0) == "-4,288.00"
    path = dataset("online_retail_non_uk.csv")
    assert run_cli("segment", str(path), "-o", str(tmp_path), "--no-report", "-q").returncode == 0
    rejected = pl.read_csv(tmp_path / "rejected_rows.csv", infer_schema=False)
    source = pl.read_csv(path, infer_schema=False)
    assert [c for c in rejected.columns if c.startswith("raw:")] == [f"raw:{c}" for c in source.columns]
    for r in rejected.head(20).iter_rows(named=True):
        want = source.row(int(r["row"]) - 2, named=True)  # row 1 is the header
        assert {c: r[f"raw:{c}"] for c in source.columns} == want


def test_config_init_refuses_an_existing_file_with_exit_73_and_a_hint(tmp_path):
    target = tmp_path / "segkit.toml"
    target.write_text("# mine\n", encoding="utf-8")
    proc = run_cli("config", "init", str(target))
    assert proc.returncode == 73 and b"--force" in proc.stderr
    assert target.read_text(encoding="utf-8") == "# mine\n"
    assert run_cli("config", "init", str(target), "--force").returncode == 0
    assert "[clv]" in target.read_text(encoding="utf-8")


VALUE_CLASS_CODES = {"important_value", "important_development", "important_retention", "important_winback",
                     "general_value", "general_development", "general_retention", "general_winback"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """online_retail_non_uk.csv in both languages, with a backtest, migration against an earlier run."""
    path = str(dataset("online_retail_non_uk.csv"))
    base = tmp_path_factory.mktemp("reports")
    early = base / "early"
    assert run_cli("segment", path, "-o", str(early), "--as-of", "2011-09-01", "--no-report", "-q").returncode == 0
    runs = {}
    for lang in ("en", "zh"):
        out = base / lang
        proc = run_cli("segment", path, "-o", str(out), "--lang", lang, "--previous", str(early), "--backtest", "90",
                       env={"COLUMNS": "200"})
        assert proc.returncode == 0, proc.stderr
        runs[lang] = (out, proc.stderr.decode())
    return runs


def test_files_hold_codes_and_reports_show_words(reports):
    import openpyxl

    out, _ = reports["en"]
    a = pl.read_csv(out / "assignments.csv", infer_schema=False)
    assert set(a["value_class"].drop_nulls()) <= VALUE_CLASS_CODES and a["value_class"].null_count() < a.height
    for col in ("tier", "churn_risk", "tier_change", "rfm_segment", "persona", "lifecycle"):
        assert all(v.isascii() for v in a[col].drop_nulls()), col
    movers = pl.read_csv(out / "movers.csv", infer_schema=False)
    assert set(movers["movement"]) <= {"up", "down", "new", "lost"}
    ws = openpyxl.load_workbook(out / "report.xlsx", read_only=True)["Customers"]
    rows = ws.iter_rows(values_only=True)
    header = next(rows)
    assert not [h for h in header if "_" in h], header  # words, never column names
    first = next(rows)
    assert first[header.index("Value class")].startswith("important value")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "important_value" not in html and "important value" in html


def test_workbook_prints_readably(reports):
    import openpyxl

    out, _ = reports["en"]
    wb = openpyxl.load_workbook(out / "report.xlsx")
    ws = wb["Customers"]
    area = ws.print_area[0] if isinstance(ws.print_area, list) else ws.print_area
    first, last = area.replace("$", "").split("!")[-1].split(":")
    printed = openpyxl.utils.column_index_from_string(re_letters(last)) - openpyxl.utils.column_index_from_string(re_letters(first)) + 1
    assert 1 < printed <= 12
    assert ws.page_setup.orientation == "landscape" and ws.print_title_rows == "$1:$1"
    for name in wb.sheetnames:  # one page wide (fitToWidth's default, 1), as many tall as needed
        other = wb[name]
        assert other.sheet_properties.pageSetUpPr.fitToPage and other.page_setup.fitToHeight == 0, name
        assert other.page_setup.fitToWidth in (None, 1) and other.page_setup.orientation == "landscape", name
    header = [c.value for c in ws[1]]
    assert ws.cell(row=1, column=header.index("Annual spend") + 1).alignment.horizontal == "right"
    assert ws.cell(row=2, column=header.index("Annual spend") + 1).number_format.endswith("_ ")


def re_letters(ref: str) -> str:
    return "".join(ch for ch in ref if ch.isalpha())


CJK = r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]"
# English words segkit itself writes; data values (country names, ids) are not in this list
SEGKIT_ENGLISH = ("missing", "read ", " as utf-8", "delimiter", "region", "Page ", "p_alive", "expected_purchases",
                  "expected_purchase_value", "predicted_revenue", "value", "frequent", "occasional", "recent",
                  "cooling", "dormant", "customer_id", "rejected", "Champions", "important_value", "r_score")
# (the tier tables' 英文名称 column gives each tier's English name on purpose)


def _zh_problems(text: str) -> tuple[list[str], list[str]]:
    import re

    ascii_marks = re.findall(rf"(?:{CJK}[,;:()]|[,;:()]{CJK})", text)
    english = [w for w in SEGKIT_ENGLISH if w in text]
    return ascii_marks, english


def _html_text(html: str) -> str:
    import re

    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", "\n", html)


def test_chinese_outputs_use_full_width_punctuation_and_no_english_from_segkit(reports):
    import openpyxl

    out, terminal = reports["zh"]
    countries = set(pl.read_csv(dataset("online_retail_non_uk.csv"), infer_schema=False)["Country"].drop_nulls())
    sources = {"terminal": terminal, "html": _html_text((out / "report.html").read_text(encoding="utf-8"))}
    wb = openpyxl.load_workbook(out / "report.xlsx", read_only=True)
    cells = []
    for ws in wb.worksheets:
        if ws.title == "客户明细":
            rows = ws.iter_rows(values_only=True)
            cells += [str(v) for v in next(rows) if v is not None]  # headers, then the category words
            cells += [str(v) for v in next(rows)[:25] if isinstance(v, str) and v not in countries]
            continue
        cells += [str(v) for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    sources["xlsx"] = "\n".join(cells)
    for name, text in sources.items():
        for country in countries:
            text = text.replace(country, "")
        text = text.replace(str(dataset("online_retail_non_uk.csv")), "").replace(str(out), "")
        marks, english = _zh_problems(text)
        assert not marks, (name, marks[:10])
        assert not english, (name, english)
