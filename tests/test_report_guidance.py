"""Reports an analyst can act on and print: actions, movers, complete Chinese, page setup, piped tables."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import ROOT, SAMPLE_DIR, make_reports, run_cli, write_csv

from segkit.outputs.report.labels import UI


@pytest.fixture(scope="module")
def zh(report_zh):
    return report_zh


@pytest.fixture(scope="module")
def en(report_en):
    return report_en


# --- Chinese --------------------------------------------------------------------------------------

def test_zh_workbook_sheet_names_headers_and_values(zh):
    wb, cfg = zh["wb"], zh["result"].config
    t = UI["zh"]
    assert wb.sheetnames[:3] == [t["sheet_summary"], t["sheet_actions"], t["sheet_tiers"]]
    assert t["sheet_customers"] in wb.sheetnames and not any(re.search(r"[A-Za-z]{4}", n) for n in wb.sheetnames)
    ws = wb[t["sheet_customers"]]
    headers = [c.value for c in ws[1]]
    assert headers[0] == t["customer_id"] and t["tier"] in headers and t["lifecycle"] in headers
    col = {h: i for i, h in enumerate(headers)}
    zh_tiers = {x.zh for x in cfg.tiers}
    values = [r[col[t["tier"]]] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert values and set(values) <= zh_tiers
    segs = {s.zh for s in cfg.segments} | {"其他", "流失客户"}
    assert {r[col[t["rfm_segment"]]] for r in ws.iter_rows(min_row=2, values_only=True)} <= segs


def test_zh_tiers_sheet_has_no_repeated_name(zh):
    ws = zh["wb"][UI["zh"]["sheet_tiers"]]
    for row in ws.iter_rows(min_row=2, max_row=8, values_only=True):
        texts = [v for v in row if isinstance(v, str)]
        assert len(texts) == len(set(texts)), row
    names = [r[0] for r in ws.iter_rows(min_row=3, max_row=7, values_only=True)]
    assert names == [x.zh for x in zh["result"].config.tiers]


def test_zh_terminal_summary_and_warnings(tmp_path):
    proc = run_cli("segment", str(SAMPLE_DIR / "orders_zh.csv"), "-o", str(tmp_path / "o"), "--lang", "zh",
                   "--no-report", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    for word in ("客户分层（年度采购额）", "结论", "数据质量", "输出目录"):
        assert word in err
    for english in ("Tiers (annual spend)", "Verdict", "Data quality", "Outputs in", "customers from",
                    "clusters are real", "differs across"):
        assert english not in err
    import json

    warnings = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))["warnings"]
    assert warnings
    for w in warnings:
        assert re.search("[\u4e00-\u9fff]", w["message_zh"]) and w["message_zh"] in err, w


def test_custom_tiers_without_zh_show_one_name(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[[tiers]]\nname = "big"\nmin = 1000\n\n[[tiers]]\nname = "small"\n', encoding="utf-8")
    rows = [["A", "2024-01-01", "5000"], ["B", "2024-01-02", "50"], ["C", "2024-01-03", "70"]]
    path = write_csv(tmp_path / "o.csv", ["customer", "date", "amount"], rows)
    out = tmp_path / "o"
    proc = run_cli("segment", str(path), "--config", str(cfg), "-o", str(out), "--k", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "big big" not in err and "small small" not in err
    ws = openpyxl.load_workbook(out / "report.xlsx")["Tiers"]
    header = [c.value for c in ws[2]]
    assert "Chinese name" not in header
    assert [r[0] for r in ws.iter_rows(min_row=3, max_row=4, values_only=True)] == ["big", "small"]


def test_zh_html_has_no_english_headings(zh):
    html = zh["html"]
    assert 'lang="zh-CN"' in html
    for key in ("actions", "warnings", "tiers_pareto", "covered_range", "currency"):
        assert UI["zh"][key] in html
    for english in ("Recommended actions", "Tiers — Pareto view", "Data covers", "Warnings"):
        assert english not in html


def test_css_font_list_reaches_beyond_noto():
    css = (ROOT / "src/segkit/outputs/report/templates/report.css").read_text(encoding="utf-8")
    fonts = re.search(r"font-family:([^;]+);", css).group(1)
    for name in ("Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei", "Droid Sans Fallback"):
        assert f'"{name}"' in fonts
    assert fonts.strip().endswith("sans-serif")


# --- actions --------------------------------------------------------------------------------------

def test_actions_next_to_group_size_in_both_reports(en, zh):
    cfg = en["result"].config
    strategic = next(a for a in cfg.actions if a.kind == "tier" and a.name == "strategic")
    assert strategic.en["service"] in en["html"] and strategic.zh["service"] in zh["html"]
    ws = en["wb"]["Actions"]
    rows = {r[0]: r for r in ws.iter_rows(values_only=True) if r and r[0]}
    a = en["result"].assignments
    n = a.filter(pl.col("tier") == "strategic").height
    assert rows["strategic"][1] == n and rows["strategic"][2] == pytest.approx(n / a.height)
    assert rows["strategic"][4] == strategic.en["service"]
    persona = next(a for a in cfg.actions if a.kind == "persona")
    assert rows[persona.name][4] == persona.en["service"]


def test_actions_are_config_text(tmp_path):
    cfg_file = tmp_path / "a.toml"
    cfg_file.write_text('[[actions]]\ntier = "scattered"\nen = { service = "Web shop only" }\nzh = { service = "仅线上" }\n',
                        encoding="utf-8")
    rows = [["A", "2024-01-01", "5"], ["B", "2024-01-02", "6"], ["C", "2024-01-03", "9"]]
    path = write_csv(tmp_path / "o.csv", ["customer", "date", "amount"], rows)
    out = tmp_path / "o"
    assert run_cli("segment", str(path), "-c", str(cfg_file), "-o", str(out), "-q", "--k", "2").returncode == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Web shop only" in html and "Named key-account manager" not in html
    bad = tmp_path / "b.toml"
    bad.write_text('[[actions]]\ntier = "x"\nen = { discount = "5%" }\n', encoding="utf-8")
    proc = run_cli("segment", str(path), "-c", str(bad), "-o", str(out), "-q")
    assert proc.returncode == 78 and b"discount" in proc.stderr


# --- movers ---------------------------------------------------------------------------------------

MOVE_BEFORE = [["A", "1", "2024-01-10", "400000"], ["B", "2", "2024-01-10", "3500000"],
               ["C", "3", "2024-01-10", "20000"], ["L", "4", "2024-01-10", "1200000"]]
MOVE_AFTER = [["A", "1", "2024-01-10", "400000"], ["A", "5", "2024-02-01", "3000000"],
              ["B", "2", "2024-01-10", "500000"], ["C", "3", "2024-01-10", "20000"], ["N", "6", "2024-02-01", "1500000"]]


def test_movers_csv_and_reports(tmp_path):
    header = ["customer", "order", "date", "amount"]
    before = write_csv(tmp_path / "before.csv", header, MOVE_BEFORE)
    after = write_csv(tmp_path / "after.csv", header, MOVE_AFTER)
    run1 = tmp_path / "run1"
    assert run_cli("segment", str(before), "-o", str(run1), "-q", "--no-report", "--k", "2").returncode == 0
    run2 = tmp_path / "run2"
    proc = run_cli("segment", str(after), "-o", str(run2), "--previous", str(run1), "-q", "--k", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    with open(run2 / "movers.csv", encoding="utf-8") as fh:
        movers = list(csv.DictReader(fh))
    got = [(m["customer_id"], m["movement"], float(m["previous_annual_spend"] or 0), float(m["annual_spend"]))
           for m in movers]
    assert got == [("A", "up", 400000.0, 3400000.0), ("B", "down", 3500000.0, 500000.0),
                   ("N", "new", 0.0, 1500000.0), ("L", "lost", 1200000.0, 0.0)]
    assert [float(m["spend_change"]) for m in movers] == [3000000.0, -3000000.0, 1500000.0, -1200000.0]
    html = (run2 / "report.html").read_text(encoding="utf-8")
    assert 'id="movers"' in html and html.index(">A<", html.index('id="movers"')) < html.index(">B<", html.index('id="movers"'))
    ws = openpyxl.load_workbook(run2 / "report.xlsx")["Movers"]
    assert [r[0] for r in ws.iter_rows(min_row=4, values_only=True)] == ["A", "B", "N", "L"]


# --- printing -------------------------------------------------------------------------------------

def _sheet_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        names = re.findall(r'<sheet name="([^"]+)" sheetId="\d+" r:id="rId(\d+)"', book)
        return {name: z.read(f"xl/worksheets/sheet{rid}.xml").decode() for name, rid in names} | {"_book": book}


def test_every_sheet_prints_landscape_one_page_wide_with_titles(en):
    xml = _sheet_xml(en["out"] / "report.xlsx")
    for name, sheet in xml.items():
        if name == "_book":
            continue
        setup = re.search(r"<pageSetup [^>]*>", sheet).group(0)
        # fitToWidth defaults to 1 (one page wide) in the file format; fitToHeight 0 = as many as needed
        assert 'orientation="landscape"' in setup and 'fitToHeight="0"' in setup, name
        assert 'fitToWidth' not in setup or 'fitToWidth="1"' in setup, name
        assert '<pageSetUpPr fitToPage="1"/>' in sheet, name
    titles = re.findall(r'<definedName name="_xlnm.Print_Titles" localSheetId="\d+">([^<]+)<', xml["_book"])
    assert any("Customers" in t and "$1:$1" in t for t in titles)
    assert any("Tiers" in t for t in titles) and any("Clusters" in t for t in titles)


def test_summary_chart_sits_under_the_tier_table_on_screen(en):
    with zipfile.ZipFile(en["out"] / "report.xlsx") as z:
        drawing = z.read("xl/drawings/drawing1.xml").decode()
    col = int(re.search(r"<xdr:from><xdr:col>(\d+)</xdr:col>", drawing).group(1))
    row = int(re.search(r"<xdr:from><xdr:col>\d+</xdr:col><xdr:colOff>\d+</xdr:colOff><xdr:row>(\d+)", drawing).group(1))
    assert col == 0 and row < 60


def test_customer_sheet_headers_are_words(en):
    ws = en["wb"]["Customers"]
    headers = [c.value for c in ws[1]]
    assert headers[:2] == ["Customer ID", "Customer"] or headers[0] == "Customer ID"
    assert "annual_spend" not in headers and "Annual spend" in headers


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_prints_few_pages_per_sheet(en, tmp_path):
    """The workbook as LibreOffice prints it: the report sheets take at most a few pages."""
    src = tmp_path / "r.xlsx"
    wb = openpyxl.load_workbook(en["out"] / "report.xlsx")
    del wb["Customers"]  # every customer: pages grow with the data by design
    wb.save(src)
    proc = subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to",
                           "pdf", "--outdir", str(tmp_path), str(src)], capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    pdf = (tmp_path / "r.pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 0 < pages <= 3 * (len(wb.sheetnames)), pages


# --- terminal table -------------------------------------------------------------------------------

def test_piped_table_does_not_wrap_and_groups_thousands(tmp_path):
    long = "Großhandel " * 12
    rows = [["A", long, "2024-01-01", "1234567.5"], ["B", "short", "2024-01-02", "12.25"],
            ["C", "x", "2024-01-03", "999"]]
    path = write_csv(tmp_path / "o.csv", ["customer", "customer name", "date", "amount"], rows)
    proc = run_cli("segment", str(path), "-o", "-", "--format", "table", "-q", "--k", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 3 + 4 + 0  # top border, header, separator, 3 rows, bottom border
    assert any("1,234,567.50" in line and long.strip() in line for line in lines)
    narrow = run_cli("segment", str(path), "-o", "-", "--format", "table", "-q", "--k", "2", env={"COLUMNS": "80"})
    out = narrow.stdout.decode().splitlines()
    assert len(out) == len(lines) and max(len(x) for x in out) <= 80


def test_readme_commands_name_the_venv():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in readme or ".venv/bin/segkit" in readme
    assert "--max-bad-rows 0.4" in readme and "--tiers quantile" in readme and "--input-kind customers" in readme


def test_message_catalogs_have_the_same_keys_and_placeholders():
    """Translations are data (src/segkit/locales/*.toml): every key in both, none empty, and the
    same {placeholders} in both, so a translated line can always be filled in."""
    import tomllib

    from segkit.outputs.report.labels import LOCALES

    en = tomllib.loads((LOCALES / "en.toml").read_text(encoding="utf-8"))
    zh = tomllib.loads((LOCALES / "zh.toml").read_text(encoding="utf-8"))
    assert en.keys() == zh.keys() and {"ui", "lifecycle", "churn", "change"} <= en.keys()
    for table in en:
        assert en[table].keys() == zh[table].keys(), table
        for key in en[table]:
            assert en[table][key].strip() and zh[table][key].strip(), (table, key)
            fields = lambda s: sorted(re.findall(r"\{(\w+)[^}]*\}", s))  # noqa: E731
            assert fields(en[table][key]) == fields(zh[table][key]), (table, key)
    assert UI["zh"] == zh["ui"]  # the reports and the terminal read these catalogs


def test_zh_html_text_is_chinese(zh):
    """Every text of the Chinese page is Chinese, except names of statistics and models, warning
    codes, the input's path and hash, and the reader's notes about the file."""
    import html as html_mod

    page = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", zh["html"], flags=re.S)
    texts = {html_mod.unescape(x).strip() for x in re.findall(r">([^<>]+)<", page)}
    allowed = {"Cramér's V", "Gamma-Gamma", "Kruskal–Wallis H", "Kruskal–Wallis p", "alpha", "BG/NBD"}
    english = [x for x in texts if re.search(r"[A-Za-z]{4,}", x) and not re.search(r"[\u4e00-\u9fff]", x)
               and x not in allowed and not re.fullmatch(r"[a-z_]+|[0-9a-f]{64}", x)
               and "orders_zh.csv" not in x]
    assert english == []


def test_online_retail_reports_in_both_languages(tmp_path):
    """The December 2010 file (no customer names, 23 days, sterling) renders in both languages with
    its coverage and tier warnings on the page."""
    from conftest import dataset

    for lang in ("en", "zh"):
        out = tmp_path / lang
        _, doc, _ = make_reports(dataset("online_retail_2010-12.csv"), out, **{"output.lang": lang, "input.max_bad_rows": 0.4})
        html = (out / "report.html").read_text(encoding="utf-8")
        for w in doc["warnings"]:
            text = w["message_zh"] if lang == "zh" else w["message"]
            assert text.split("(")[0][:30].replace("'", "&#39;") in html, w["code"]
        assert "2010-12-01" in html and "2010-12-23" in html
