"""Reading exports losslessly: encodings, delimiters, title rows, totals rows, Excel, Parquet, stdin."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import openpyxl
import polars as pl
import pytest

from conftest import write_csv
from segkit.ingest.clean import clean
from segkit.errors import DataError, InputNotFoundError
from segkit.ingest.columns import resolve
from segkit.ingest.read import read_input

ZH_HEADER = ["单据编号", "单据日期", "客户编码", "客户名称", "价税合计"]


def _clean(path, cfg, **kw):
    """Read and clean; the order lines sorted, since clean's streaming group-by does not keep row order."""
    raw = read_input(str(path), **kw)
    cleaned = clean(raw, cfg)
    lines = cleaned.lines.sort(["customer_id", "order_date", "order_key"])
    return raw, dataclasses.replace(cleaned, lines=lines)


def test_gb18030_csv_with_chinese_headers_title_rows_and_totals(tmp_path, cfg):
    text = (
        "北京某商贸公司 销售明细,,,,\n"
        "导出时间：2025-01-02,,,,\n"
        + ",".join(ZH_HEADER) + "\n"
        "XS001,2024年3月5日,000123,䶮字号便利店,\"￥1,234.50\"\n"  # 䶮 is in GB18030 but not GBK
        "XS002,2024/03/06,000123,䶮字号便利店,\"(￥34.50)\"\n"
        ",,,,\n"
        "XS003,20240307,0456,超市,99\n"
        "合计,,,,\"￥1,299.00\"\n"
    )
    path = tmp_path / "zh.csv"
    path.write_bytes(text.encode("gb18030"))
    raw, c = _clean(path, cfg)
    c = dataclasses.replace(c, lines=c.lines.sort("order_key"))
    assert raw.encoding == "gb18030"
    assert raw.header_row == 3
    assert raw.mapping == {"order_id": "单据编号", "order_date": "单据日期", "customer_id": "客户编码",
                           "customer_name": "客户名称", "amount": "价税合计"}
    assert c.quality["blank_rows"] == 1 and c.quality["totals_rows"] == 1 and c.quality["rejected_rows"] == 0
    assert c.lines["customer_id"].to_list() == ["000123", "000123", "0456"]
    assert c.lines["amount"].to_list() == [1_234_500_000, -34_500_000, 99_000_000]
    assert c.lines["customer_name"][0] == "䶮字号便利店"
    assert c.lines["order_date"].to_list() == [dt.date(2024, 3, 5), dt.date(2024, 3, 6), dt.date(2024, 3, 7)]


def test_utf8_bom_and_semicolon_delimiter(tmp_path, cfg):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffCustomer ID;Invoice Date;Net Amount\nA1;2024-01-01;10\nA2;2024-01-02;20\n".encode())
    raw, c = _clean(path, cfg)
    assert raw.encoding == "utf-8" and raw.delimiter == ";"
    assert raw.mapping == {"customer_id": "Customer ID", "order_date": "Invoice Date", "amount": "Net Amount"}
    assert c.lines.height == 2


def test_tsv_is_tab_separated(tmp_path, cfg):
    path = tmp_path / "x.tsv"
    path.write_text("customer\tdate\tamount\nA,B\t2024-01-01\t1,000\n", encoding="utf-8")
    raw, c = _clean(path, cfg)
    assert c.lines["customer_id"].to_list() == ["A,B"] and c.lines["amount"][0] == 1_000_000_000


def test_explicit_encoding_override(tmp_path, cfg):
    path = write_csv(tmp_path / "x.csv", ["客户编码", "日期", "金额"], [["甲", "2024-01-01", "5"]], encoding="gb18030")
    raw = read_input(str(path), encoding="gb18030")
    assert raw.encoding == "gb18030"
    with pytest.raises(DataError, match="not valid utf-8"):
        read_input(str(path), encoding="utf-8")


def test_rejected_rows_carry_source_row_numbers(tmp_path, cfg):
    path = tmp_path / "x.csv"
    path.write_text("Report title\ncustomer,date,amount\nA,2024-01-01,5\n,2024-01-01,5\nB,someday,5\nC,2024-01-02,abc\n\nD,2024-01-03,7\n",
                    encoding="utf-8")
    raw, c = clean_lenient(path, cfg)
    rej = c.rejected.select("row", "column", "reason", "value").rows()
    assert rej == [
        (4, "customer", "missing customer_id", None),
        (5, "date", "unparsable order_date (not a date)", "someday"),
        (6, "amount", "unparsable amount (not a number)", "abc"),
    ]
    assert c.quality["blank_rows"] == 1 and c.lines.height == 2


def clean_lenient(path, cfg):
    import dataclasses

    raw = read_input(str(path))
    return raw, clean(raw, dataclasses.replace(cfg, max_bad_rows=1.0))


def test_too_many_bad_rows_names_the_column(tmp_path, cfg):
    rows = [[f"C{i}", "2024-01-01" if i % 3 else "bad", "5"] for i in range(30)]
    path = write_csv(tmp_path / "x.csv", ["customer", "date", "amount"], rows)
    raw = read_input(str(path))
    with pytest.raises(DataError, match=r"column 'date'.*row 2: unparsable order_date"):
        clean(raw, cfg)


def test_xlsx_with_title_row_totals_row_and_leading_zero_ids(tmp_path, cfg):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["2024年销售明细"])
    ws.append([])
    ws.append(["客户编码", "客户名称", "单据日期", "价税合计"])
    ws.append(["000789", "甲店", dt.datetime(2024, 5, 1), 1000.5])
    ws.append([123, "乙店", 45296, "￥2,000.00"])
    ws.append(["合计", None, None, 3000.5])
    path = tmp_path / "t.xlsx"
    wb.save(path)
    raw, c = _clean(path, cfg)
    assert raw.format == "excel" and raw.header_row == 3
    assert c.quality["totals_rows"] == 1 and c.quality["rejected_rows"] == 0
    c = dataclasses.replace(c, lines=c.lines.sort("customer_id"))
    assert c.lines["customer_id"].to_list() == ["000789", "123"]
    assert c.lines["order_date"].to_list() == [dt.date(2024, 5, 1), dt.date(2024, 1, 5)]
    assert c.lines["amount"].to_list() == [1_000_500_000, 2_000_000_000]


def test_xlsx_odd_value_after_row_100_is_rejected_not_nulled(tmp_path, cfg):
    """Type inference from the first 100 rows would turn row 150's text into a silent null."""
    import dataclasses

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["customer_id", "order_date", "amount"])
    for i in range(200):
        amount = "N/A" if i == 150 else 10.25
        ws.append([1000 + i, dt.date(2024, 1, 1) + dt.timedelta(days=i), amount])
    path = tmp_path / "odd.xlsx"
    wb.save(path)
    raw = read_input(str(path))
    c = clean(raw, dataclasses.replace(cfg, max_bad_rows=1.0))
    assert c.rejected.select("row", "reason", "value").rows() == [(152, "unparsable amount (not a number)", "N/A")]  # header is row 1, i = 150 is row 152
    assert c.lines.height == 199
    assert c.lines["customer_id"][0] == "1000"


def test_xlsx_picks_first_sheet_with_required_columns_and_sheet_option(tmp_path, cfg):
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["这是说明页"])
    ws = wb.create_sheet("明细")
    ws.append(["客户编码", "日期", "金额"])
    ws.append(["A", "2024-01-01", 5])
    path = tmp_path / "s.xlsx"
    wb.save(path)
    assert read_input(str(path)).sheet == "明细"
    assert read_input(str(path), sheet="1").sheet == "明细"
    with pytest.raises(DataError, match="no sheet 'nope'"):
        read_input(str(path), sheet="nope")
    with pytest.raises(DataError, match="no customer_id column"):
        read_input(str(path), sheet="0")


def test_file_named_xlsx_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("customer,date,amount\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a readable Excel workbook"):
        read_input(str(path))


def test_parquet_input(tmp_path, cfg):
    path = tmp_path / "x.parquet"
    pl.DataFrame({"customer_id": ["007", "008"], "order_date": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
                  "amount": [1.5, -2.0]}).write_parquet(path)
    raw, c = _clean(path, cfg)
    assert raw.format == "parquet"
    assert c.lines["customer_id"].to_list() == ["007", "008"]
    assert c.lines["amount"].to_list() == [1_500_000, -2_000_000]


def test_stdin_csv(cfg):
    data = b"customer,date,amount\nA,2024-01-01,5\n"
    raw = read_input("-", stdin=io.BytesIO(data))
    assert raw.source == "<stdin>"
    assert clean(raw, cfg).lines.height == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"customer,date,amount\n", "no data rows"),
    (bytes(range(256)) * 10, "not a text file"),
])
def test_unusable_files(tmp_path, cfg, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        clean(read_input(str(path)), cfg)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such file"):
        read_input(str(tmp_path / "nope.csv"))
    with pytest.raises(InputNotFoundError, match="folder"):
        read_input(str(tmp_path))


def test_quantity_times_unit_price_when_no_amount(tmp_path, cfg):
    path = write_csv(tmp_path / "q.csv", ["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
                     [["1", "6", "2010-12-01 08:26:00", "2.55", "17850.0"], ["C2", "-2", "2010-12-02", "2.55", "17850.0"]])
    raw, c = _clean(path, cfg)
    assert raw.mapping["quantity"] == "Quantity" and "amount" not in raw.mapping
    assert c.lines["amount"].to_list() == [15_300_000, -5_100_000]
    assert c.lines["customer_id"].to_list() == ["17850", "17850"]


class TestColumnResolution:
    def test_case_space_punctuation_insensitive(self):
        got = resolve(["CUSTOMER_ID", "Order-Date", " Sales "], {}, "f")
        assert got == {"customer_id": "CUSTOMER_ID", "order_date": "Order-Date", "amount": " Sales "}

    def test_ambiguity_names_both_columns_and_the_fix(self):
        with pytest.raises(DataError, match=r"'金额' and '价税合计' both look like amount; choose one with columns.amount="):
            resolve(["客户编码", "日期", "金额", "价税合计"], {}, "f.csv")

    def test_bracketed_units_are_ignored(self):
        got = resolve(["客户编码", "单据日期", "价税合计（元）", "Qty (pcs)"], {}, "f.csv")
        assert got["amount"] == "价税合计（元）" and got["quantity"] == "Qty (pcs)"

    def test_map_resolves_ambiguity(self):
        got = resolve(["客户编码", "日期", "金额", "价税合计"], {"amount": "价税合计"}, "f.csv")
        assert got["amount"] == "价税合计"

    def test_map_unknown_column(self):
        with pytest.raises(DataError, match="no column 'Kunde'"):
            resolve(["a", "b"], {"customer_id": "Kunde"}, "f.csv")

    def test_missing_amount_suggests_map(self):
        with pytest.raises(DataError, match=r"no amount column \(or quantity and unit_price\).*columns.amount="):
            resolve(["客户编码", "日期", "数量"], {}, "f.csv")


def test_blank_header_cell_gets_a_name_that_map_can_use(tmp_path, cfg):
    path = tmp_path / "x.csv"
    path.write_text("customer,,amount\r\nA,2024-01-01,5\r\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column_2.*columns.order_date="):
        read_input(str(path))
    raw = read_input(str(path), mapping={"order_date": "column_2"})
    assert clean(raw, cfg).lines["order_date"].to_list() == [dt.date(2024, 1, 1)]


def test_crlf_quoted_newlines_and_duplicate_headers(tmp_path, cfg):
    path = tmp_path / "x.csv"
    path.write_bytes(b'Sales export\r\n\r\ncustomer,date,amount,note,note\r\nA,2024-01-01,"1,000",x,y\r\n'
                     b'B,2024-01-02,5,"multi\r\nline",z\r\nC,2024-01-03,7,,\r\n')
    raw, c = _clean(path, cfg)
    assert raw.header_row == 3
    assert sorted(c.lines["customer_id"].to_list()) == ["A", "B", "C"]
    assert c.quality["rejected_rows"] == 0 and c.quality["blank_rows"] == 0
