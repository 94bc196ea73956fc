"""report.xlsx and report.html: content, charts, formula injection, escaping, language, no network."""

from __future__ import annotations

import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import SAMPLE_DIR, make_reports, write_csv

from segkit import config, pipeline
from segkit.result import summary
from segkit.outputs.staging import StagedDir
from segkit.outputs.report import build_context, write_reports
from segkit.outputs.report import excel as excel_mod
from segkit.outputs.report.context import customer_columns
from segkit.outputs.report.excel import write_xlsx
from segkit.outputs.report.html import render_html

SHEETS = ["Summary", "Actions", "Tiers", "RFM", "Clusters", "Validation", "CLV", "Data quality", "Customers"]
SHEETS_ZH = ["汇总", "建议行动", "客户分层", "RFM细分", "聚类", "统计检验", "客户终身价值", "数据质量", "客户明细"]


def header_names(ws, ctx) -> list[str]:
    """The Customers sheet's header row as assignments column names (the sheet shows words)."""
    by_header = {c["header"]: c["name"] for c in ctx["customers_table"]["columns"]}
    return [by_header[c.value] for c in ws[1]]
CHART_SHEETS = ["Summary", "Tiers", "RFM", "Clusters"]
EVIL_NAMES = [
    '=HYPERLINK("http://evil","x")',
    "@SUM(A1)",
    "+1",
    "-2+3",
    "=1+1",
    "<script>alert(1)</script>",
]


def load_cfg(**overrides):
    values = {"output.reports": ["xlsx", "html"], **overrides}
    return config.load(None, values, use_env=False)


@pytest.fixture(scope="module")
def sample(report_en):
    return report_en


@pytest.fixture(scope="module")
def sample_zh(report_zh):
    return report_zh


def evil_orders(path: Path) -> Path:
    """Eight customers with several orders each; some names are formulas or markup."""
    names = EVIL_NAMES + ["Plain Trading Co.", "Golden Mart"]
    rows = []
    for i, name in enumerate(names):
        for j in range(4 + i):
            rows.append([f"C{i:03d}", name, f"2025-{1 + (j * 2 + i) % 12:02d}-{1 + (i * 3 + j) % 27:02d}",
                         f"{(i + 1) * 1000 + j * 137:.2f}", f"O{i}-{j}"])
    return write_csv(path, ["customer_id", "customer_name", "order_date", "amount", "order_id"], rows)


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    base = tmp_path_factory.mktemp("evil")
    out = base / "out"
    result, _, ctx = make_reports(evil_orders(base / "orders.csv"), out)
    return {"out": out, "result": result, "ctx": ctx,
            "html": (out / "report.html").read_text(encoding="utf-8")}


# --- workbook ------------------------------------------------------------------------------------

def test_workbook_has_every_sheet_in_order(sample):
    assert sample["wb"].sheetnames == SHEETS


def test_customers_sheet_has_one_row_per_customer(sample):
    ws = sample["wb"]["Customers"]
    assignments = sample["result"].assignments
    assert ws.max_row == assignments.height + 1
    header = header_names(ws, sample["ctx"])
    key = [c for c in excel_mod.PRINT_COLUMNS if c in assignments.columns]  # the printed columns first
    assert header == key + [c for c in assignments.columns if c not in key]
    first = dict(zip(header, [c.value for c in next(ws.iter_rows(min_row=2, max_row=2))]))
    expected = assignments.row(0, named=True)
    assert first["customer_id"] == expected["customer_id"]
    assert first["monetary"] == pytest.approx(expected["monetary"])
    assert first["last_order_date"].date() == expected["last_order_date"]
    assert first["tier"] == expected["tier"]
    ids = [r[0] for r in ws.iter_rows(min_row=2, max_col=1, values_only=True)]
    assert ids == assignments["customer_id"].to_list()


def test_customers_sheet_is_typed_frozen_and_filtered(sample):
    ws = sample["wb"]["Customers"]
    n = sample["result"].assignments.height
    cols = dict(zip(header_names(ws, sample["ctx"]), [c.column_letter for c in ws[1]]))
    assert ws.freeze_panes == "C2"
    assert ws.auto_filter.ref == f"A1:{cols['customer_type']}{n + 1}"
    assert ws[f"{cols['monetary']}2"].number_format == excel_mod.NUMBER_FORMATS["money"] == "#,##0.00_ "
    assert ws[f"{cols['recency_days']}2"].number_format == "#,##0_ "
    assert ws[f"{cols['yoy_growth']}2"].number_format == "0.0%_ "
    assert ws[f"{cols['first_order_date']}2"].is_date
    assert ws[f"{cols['customer_id']}2"].data_type == "s"  # ids keep their leading zeros
    assert ws.column_dimensions[cols["customer_name"]].width > len("customer_name")


def test_every_chart_sheet_has_a_native_chart(sample):
    with zipfile.ZipFile(sample["out"] / "report.xlsx") as z:
        for name in CHART_SHEETS:  # sheet -> its drawing -> a chart part, as Excel resolves them
            assert _chart_parts_of_sheet(z, name), f"no chart on sheet {name}"
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        pareto = next(z.read(n).decode() for n in charts if "<c:lineChart>" in z.read(n).decode())
    assert len(charts) >= len(CHART_SHEETS)
    assert "<c:barChart>" in pareto  # tier spend bars combined with the cumulative share line


def test_summary_sheet_shows_tier_pareto_table(sample):
    ws = sample["wb"]["Summary"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    header_at = next(i for i, r in enumerate(rows) if r[0] == "Tier")
    tiers = sample["doc"]["tiers"]
    for offset, tier in enumerate(tiers, start=1):
        row = rows[header_at + offset]
        assert row[0] == tier["tier"]
        assert row[3] == tier["customers"]
        assert row[4] == pytest.approx(tier["share_of_customers"])
        assert row[6] == pytest.approx(tier["annual_spend"])
        assert row[7] == pytest.approx(tier["share_of_spend"])
    total = rows[header_at + len(tiers) + 1]
    assert total[0] == "Total" and total[3] == sample["doc"]["customers"]
    cell = ws.cell(row=header_at + 2, column=5)
    assert cell.number_format == "0.0%_ "
    texts = [r[0] for r in rows if isinstance(r[0], str)]
    assert sample["doc"]["validation"]["verdict_text"] in texts
    assert sample["doc"]["as_of"] in [r[1] for r in rows]


def test_rfm_sheet_has_heat_table_with_colour_scale_and_cut_points(sample):
    ws = sample["wb"]["RFM"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    heat_header = next(i for i, r in enumerate(rows) if r[1:6] == ("F1", "F2", "F3", "F4", "F5"))
    heat = [rows[heat_header + k] for k in range(1, 6)]
    assert [r[0] for r in heat] == ["R5", "R4", "R3", "R2", "R1"]
    assert sum(sum(r[1:6]) for r in heat) == sample["doc"]["customers"]
    assert any(cf.rules[0].type == "colorScale" for cf in ws.conditional_formatting)
    assert any(r[0] == "recency (days)" for r in rows)  # the cut points used


def test_validation_sheet_leads_with_the_null_test_and_labels_the_rest_descriptive(sample):
    ws = sample["wb"]["Validation"]
    rows = list(ws.iter_rows())
    values = [r[0].value for r in rows]
    v = sample["doc"]["validation"]
    assert values[1] == v["verdict_text"]
    at = values.index("Are there distinct groups at all? Null-reference test")
    facts = {r[0].value: r[1].value for r in rows[at + 1: at + 8]}
    assert facts["Distinct groups (every null rejects)"] == ("yes" if v["distinct"] else "no")
    assert facts["Verdict"].startswith(v["verdict"]) and facts["Groups the data support"] == v["groups"]
    # then one row per null: its statistic at k against its replicates
    head = next(i for i in range(at, len(rows)) if values[i] == "One-population null")
    table = [[c.value for c in r[:9]] for r in rows[head + 1: head + 1 + len(v["null_tests"])]]
    for row, t in zip(table, v["null_tests"]):
        assert row[2] == t["k"] and row[3] == pytest.approx(t["statistic"]) and row[4] == pytest.approx(t["null_mean"])
        assert row[6] == t["replicates"] and row[7] == pytest.approx(t["p"])
        assert row[8] == ("yes" if t["p"] < 0.01 else "no")
    # the circular tests come after the descriptive note, without a "significant" column
    desc = values.index("Descriptive statistics: how the clusters differ")
    assert values[desc + 1] == v["descriptive_note"] and "not evidence" in values[desc + 1]
    header = next(r for r in rows if r[0].value == "Feature")
    assert header[0].row > desc + 1 and "Significant" not in [c.value for c in header]
    features = rows[header[0].row: header[0].row + 3]
    assert [r[0].value for r in features] == ["log recency (days)", "log orders", "log net amount"]
    # chi-square p-values only for attributes that did not build the clusters; significance marked
    chi = values.index("Chi-square tests of independence (cluster × attribute not used to build the clusters)")
    tested = [r for r in rows[chi + 2: chi + 5]]
    assert [r[0].value for r in tested] == ["channel", "region", "customer type"]
    for r in tested:
        assert r[6].value == ("yes" if r[3].value < 0.01 else "no")
    assert not any(isinstance(x, str) and x.startswith("tier") for x in values[chi + 2: chi + 5])
    assert any(isinstance(x, str) and x.startswith("Cluster × tier and cluster × RFM segment") for x in values)


def test_clusters_sheet_profiles_in_original_units(sample):
    ws = sample["wb"]["Clusters"]
    rows = list(ws.iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r[0] == "Cluster")
    profiles = sample["doc"]["clusters"]["profiles"]
    for offset, p in enumerate(profiles, start=1):
        row = rows[header_at + offset]
        assert row[0] == p["cluster"]
        assert row[2] == p["customers"]
        assert row[8] == pytest.approx(p["mean_monetary"])


def test_input_text_is_never_a_formula(evil):
    path = evil["out"] / "report.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["Customers"]
    name_col = header_names(ws, evil["ctx"]).index("customer_name") + 1
    cells = {ws.cell(row=r, column=name_col).value: ws.cell(row=r, column=name_col) for r in range(2, ws.max_row + 1)}
    for name in EVIL_NAMES:
        assert name in cells, name
        assert cells[name].data_type == "s", name
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            assert not any(c.data_type == "f" for c in row), sheet.title
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in z.read(name).decode("utf-8"), name


def test_context_is_plain_json(sample, sample_zh):
    for ctx in (sample["ctx"], sample_zh["ctx"]):
        assert json.loads(json.dumps(ctx, allow_nan=False)) == ctx


def test_top_lists_hold_top_n_not_every_customer(sample):
    top = sample["ctx"]["top"]
    spend = [r["annual_spend"] for r in top["spend"]["rows"]]
    assert sample["doc"]["customers"] > 50
    assert len(spend) == 50
    assert spend == sorted(spend, reverse=True)
    assert spend[0] == sample["result"].assignments["annual_spend"].max()
    churn = top["churn"]["rows"]
    assert 0 < len(churn) <= 50 and all(r["churn_risk"] == "high" for r in churn)


def test_customers_beyond_excel_row_limit_continue_on_another_sheet(sample, tmp_path, monkeypatch):
    monkeypatch.setattr(excel_mod, "EXCEL_MAX_ROWS", 101)
    monkeypatch.setattr(excel_mod, "CHUNK_ROWS", 37)  # the rows' XML is made in chunks: cross their edges
    path = tmp_path / "r.xlsx"
    write_xlsx(sample["ctx"], sample["result"].assignments, path)
    wb = openpyxl.load_workbook(path, read_only=True)
    parts = [n for n in wb.sheetnames if n.startswith("Customers")]
    assert parts == ["Customers", "Customers 2", "Customers 3"]
    assert sum(wb[n].max_row - 1 for n in parts) == sample["result"].assignments.height
    # read-only openpyxl reads as many rows as each sheet's <dimension> says: every row, in order
    ids = [r[0] for n in parts for r in wb[n].iter_rows(min_row=2, max_col=1, values_only=True)]
    assert ids == sample["result"].assignments["customer_id"].to_list()


def test_unwritable_workbook_raises_oserror(sample, tmp_path):
    """StagedDir turns an OSError into a clear 'cannot write' message."""
    with pytest.raises(OSError):
        write_xlsx(sample["ctx"], sample["result"].assignments, tmp_path / "missing" / "r.xlsx")


def test_only_the_configured_reports_are_written(tmp_path):
    cfg = config.load(None, {"output.reports": ["html"]}, use_env=False)
    result = pipeline.run(str(SAMPLE_DIR / "orders_zh.csv"), cfg)
    staged = StagedDir(tmp_path)
    write_reports(result, staged)
    staged.commit()
    assert (tmp_path / "report.html").exists()
    assert not (tmp_path / "report.xlsx").exists()


def test_reports_without_clusters(tmp_path):
    cfg = load_cfg()
    result = pipeline.run(str(SAMPLE_DIR / "orders_zh.csv"), cfg, cluster=False)
    ctx = build_context(result, summary(result))
    assert not ctx["clusters"]["available"] and not ctx["validation"]["available"]
    write_xlsx(ctx, result.assignments, tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == SHEETS
    assert "<section id=\"clusters\">" in render_html(ctx)


# --- migration ---------------------------------------------------------------------------------

def fake_migration(doc: dict) -> dict:
    tiers = [t["tier"] for t in doc["tiers"]]
    n = len(tiers)
    counts = [[(i + 1) * 10 + j for j in range(n + 1)] for i in range(n + 1)]
    spend = [[float(c) * 1000 for c in row] for row in counts]
    return {
        "previous": "/runs/2026-10-01/assignments.csv",
        "changes": {"up": 12, "down": 7, "same": 200, "new": 31},
        "lost_customers": 2,
        "lost": [{"customer_id": "X1", "customer_name": "<b>Gone</b> Trading", "previous_tier": "key",
                  "previous_annual_spend": 3_500_000.0},
                 {"customer_id": "X2", "customer_name": None, "previous_tier": "scattered",
                  "previous_annual_spend": None}],
        "matrix": {"tiers": tiers, "counts": counts, "spend": spend},
        "row_labels": [*tiers, "new"],
        "column_labels": [*tiers, "lost"],
        "unknown_previous_tiers": ["platinum"],
    }


def test_migration_sheet_and_section_render_when_present(sample, tmp_path):
    doc = dict(sample["doc"], migration=fake_migration(sample["doc"]))
    ctx = build_context(sample["result"], doc)
    path = tmp_path / "r.xlsx"
    write_xlsx(ctx, sample["result"].assignments, path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == SHEETS[:7] + ["Migration"] + SHEETS[7:]
    rows = list(wb["Migration"].iter_rows(values_only=True))
    header = next(i for i, r in enumerate(rows) if r[1:3] == ("strategic", "key"))
    assert rows[header][6] == "lost"
    assert rows[header + 1][0] == "strategic" and rows[header + 1][1:7] == (10, 11, 12, 13, 14, 15)
    assert rows[header + 6][0] == "new"
    assert ("X1", "<b>Gone</b> Trading", "key", 3_500_000) in [r[:4] for r in rows]
    assert ("up", 12) in [r[:2] for r in rows] and ("lost", 2) in [r[:2] for r in rows]
    html = render_html(ctx)
    assert '<section id="migration">' in html
    assert "platinum" in html and any("platinum" in str(r[0]) for r in rows)
    assert "&lt;b&gt;Gone&lt;/b&gt; Trading" in html and "<b>Gone</b>" not in html


def test_migration_from_a_real_previous_run(tmp_path):
    from segkit.customers.migration import add_migration
    from segkit.outputs.staging import rows_bytes

    earlier = pipeline.run(str(SAMPLE_DIR / "orders_zh.csv"), load_cfg(**{"analysis.as_of": "2026-05-01"}))
    previous = tmp_path / "assignments.csv"
    previous.write_bytes(rows_bytes(earlier.assignments, "csv"))
    result = pipeline.run(str(SAMPLE_DIR / "orders_zh.csv"), load_cfg(**{"output.lang": "zh"}))
    result = add_migration(result, previous)
    doc = summary(result)
    staged = StagedDir(tmp_path / "out")
    ctx = write_reports(result, staged)
    staged.commit()
    counts = doc["migration"]["matrix"]["counts"]
    assert ctx["migration"]["counts"] == counts
    assert ctx["migration"]["rows"][-1] == "新增" and ctx["migration"]["columns"][-1] == "流失"
    wb = openpyxl.load_workbook(tmp_path / "out" / "report.xlsx")
    assert wb.sheetnames == SHEETS_ZH[:7] + ["层级迁移", "变动客户"] + SHEETS_ZH[7:]
    # The matrix, counted here from the two runs' assignments: previous tier (or new) x current tier (or lost).
    before = dict(earlier.assignments.select("customer_id", "tier").iter_rows())
    after = dict(result.assignments.select("customer_id", "tier").iter_rows())
    tiers = [t.name for t in result.config.tiers]
    want = [[0] * (len(tiers) + 1) for _ in range(len(tiers) + 1)]
    for cid, tier in after.items():
        want[tiers.index(before[cid]) if cid in before else len(tiers)][tiers.index(tier)] += 1
    for cid, tier in before.items():
        if cid not in after:
            want[tiers.index(tier)][len(tiers)] += 1
    assert counts == want and sum(map(sum, want)) == len(before.keys() | after.keys())
    assert "上期层级" in [c.value for c in wb["客户明细"][1]]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '<section id="migration">' in html and "层级迁移" in html


def test_no_migration_without_previous(sample):
    assert sample["ctx"]["migration"] is None
    assert "Migration" not in sample["wb"].sheetnames
    assert 'id="migration"' not in sample["html"]


# --- HTML --------------------------------------------------------------------------------------

class _Refs(HTMLParser):
    """Collects every tag and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
                self.urls.append(value or "")
            if name == "style":
                self.styles.append(value or "")

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag):
        self._in_style = False


def parse(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    return p


@pytest.mark.parametrize("fixture", ["sample", "sample_zh", "evil"])
def test_html_references_nothing_outside_the_file(fixture, request):
    html = request.getfixturevalue(fixture)["html"]
    refs = parse(html)
    assert refs.urls, "expected in-page links"
    for url in refs.urls:
        assert url.startswith("#"), url
        assert not re.search(r"(https?:)?//", url), url
    css = "\n".join(refs.styles)
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(refs.tags)
    assert "default-src 'none'" in html  # the browser refuses any request should one slip in


def test_html_has_the_charts_as_inline_svg(sample):
    html = sample["html"]
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(svgs) >= 4  # tier Pareto, segment sizes, R×F heat map, cluster profiles
    pareto = svgs[0]
    assert pareto.count("<rect") >= len(sample["doc"]["tiers"]) and "<polyline" in pareto
    for section in ("tiers", "mix", "rfm", "clusters", "validation", "customers", "quality"):
        assert f'<section id="{section}">' in html


def test_html_escapes_input_text(evil):
    html = evil["html"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=HYPERLINK(&#34;http://evil&#34;,&#34;x&#34;)" in html
    assert "<script" not in html.lower()


def test_html_in_chinese(sample_zh):
    html = sample_zh["html"]
    assert '<html lang="zh-CN">' in html
    for word in ("战略客户", "重点客户", "成长客户", "普通客户", "零散客户", "客户分层报告", "统计检验", "冠军客户"):
        assert word in html, word
    assert "Customer segmentation report" not in html
    assert "Annual spend" not in html


def test_html_in_english(sample):
    html = sample["html"]
    assert '<html lang="en">' in html
    assert "Customer segmentation report" in html
    assert "<td>strategic</td>" in html
    assert "战略客户" not in html
    assert "@media print" in html


def test_html_stays_small_for_many_customers(sample):
    assert len(sample["html"].encode()) < 300_000
    assert sample["html"].count("<tr>") < 400  # aggregates and top-N lists, not every customer


def test_chinese_workbook_headings(sample_zh):
    rows = list(sample_zh["wb"]["汇总"].iter_rows(values_only=True))
    assert rows[0][0] == "客户分层报告"
    assert any(r[0] == "战略客户" for r in rows)
    assert sample_zh["wb"].sheetnames == SHEETS_ZH


def _customers_workbook(df: pl.DataFrame, path: Path):
    """Only the Customers sheet(s) of ``df``, written as write_xlsx writes them."""
    import io

    ctx = {"meta": {"title": "t", "segkit_version": "0"}, "customers_table": customer_columns(df)}
    built = io.BytesIO()
    book = excel_mod.xlsxwriter.Workbook(built, excel_mod.OPTIONS)
    rows = excel_mod.customers_sheets(book, excel_mod.Formats(book), ctx, df)
    book.close()
    excel_mod.write_package(built, rows, path)
    return openpyxl.load_workbook(path)["Customers"]


def test_customers_sheet_matches_assignments_for_a_frame_with_nulls(tmp_path):
    """Nulls stay empty, NaN becomes empty, dates become dates."""
    import datetime as dt

    df = pl.DataFrame({"customer_id": ["a", "b"], "customer_name": [None, "=x"],
                       "last_order_date": [dt.date(2025, 1, 2), None], "monetary": [float("nan"), 2.5],
                       "recency_days": [None, 3]})
    ws = _customers_workbook(df, tmp_path / "c.xlsx")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    # the printed key columns first: id, name, recency, net amount, last order
    assert rows[0] == ("a", None, None, None, dt.datetime(2025, 1, 2))
    assert rows[1] == ("b", "=x", 3, 2.5, None)
    assert ws["B3"].data_type == "s"
    assert ws.max_row == 3 and ws.calculate_dimension() == "A1:E3"


def test_customers_sheet_keeps_text_as_written_and_numbers_exact(tmp_path):
    """Markup and white space come back as the same text; a number comes back as the same float
    (not rounded to 16 digits: 87782818.57 is not 87782818.56999999)."""
    names = ["&<b>\"x\"</b>", " lead", "trail ", "<r>raw</r>", "中文\u3000", "tab\tnl\nend", ""]
    amounts = [87782818.57, 0.1 + 0.2, 1e20, 1e-7, -8427.440000000001, 5.0, None]
    df = pl.DataFrame({"customer_id": [f"c{i}" for i in range(len(names))], "customer_name": names,
                       "monetary": amounts})
    ws = _customers_workbook(df, tmp_path / "c.xlsx")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in rows] == names
    assert [r[2] for r in rows] == amounts
    assert all(ws.cell(row=i, column=2).data_type == "s" for i in range(2, len(names) + 2))


def test_every_heading_exists_in_both_languages():
    from segkit.outputs.report.labels import UI

    assert UI["en"].keys() == UI["zh"].keys()
    assert all(UI["zh"][k] for k in UI["zh"])


def _chart_parts_of_sheet(z: zipfile.ZipFile, sheet: str) -> list[str]:
    """The chart parts a worksheet shows, following the package's relationship files."""
    import posixpath
    import re

    def targets(rels_path: str, kind: str) -> list[str]:
        if rels_path not in z.namelist():
            return []
        base = posixpath.dirname(posixpath.dirname(rels_path))
        xml = z.read(rels_path).decode()
        return [posixpath.normpath(posixpath.join(base, t)) for t in
                re.findall(rf'Type="[^"]*/{kind}" Target="([^"]+)"', xml)
                + re.findall(rf'Target="([^"]+)" Type="[^"]*/{kind}"', xml)]

    workbook = z.read("xl/workbook.xml").decode()
    rid = re.search(rf'<sheet [^>]*name="{re.escape(sheet)}"[^>]*r:id="([^"]+)"', workbook).group(1)
    rels = z.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*Target="([^"]+)"', rels) or \
        re.search(rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rid}"', rels)
    sheet_path = posixpath.normpath(posixpath.join("xl", target.group(1).lstrip("/").removeprefix("xl/")))
    sheet_rels = posixpath.join(posixpath.dirname(sheet_path), "_rels", posixpath.basename(sheet_path) + ".rels")
    charts = []
    for drawing in targets(sheet_rels, "drawing"):
        drawing_rels = posixpath.join(posixpath.dirname(drawing), "_rels", posixpath.basename(drawing) + ".rels")
        charts += targets(drawing_rels, "chart")
    return [c for c in charts if c in z.namelist()]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_html_validation_section_says_what_decides_and_what_only_describes(sample, sample_zh, lang):
    from segkit.outputs.report.labels import UI

    page = sample if lang == "en" else sample_zh
    html = page["html"]
    section = html[html.index('<section id="validation">'):]
    section = section[:section.index("</section>")]
    t = UI[lang]
    v = page["result"].validation.summary()
    verdict = v["verdict_text"] if lang == "en" else v["verdict_zh"]
    assert verdict.replace("'", "&#39;") in section
    # the null test comes first, the descriptive tables after their note, and no claim of reality
    order = [section.index(t[key]) for key in ("null_test_title", "stability_title", "descriptive_title",
                                               "per_feature_tests")]
    assert order == sorted(order)
    note = v["descriptive_note"] if lang == "en" else v["descriptive_note_zh"]
    assert note.replace("&", "&amp;") in section
    anova_table = section[section.index(t["per_feature_tests"]):section.index(t["model_fit"])]
    assert t["significant"] not in anova_table
    assert "are real" not in html and "真实存在" not in html
