"""report.xlsx: render the report context as a workbook with native Excel charts.

Written with xlsxwriter in constant-memory mode: each sheet streams to disk row by row, so
100,000+ customers cost little memory. Consequences of streaming: every sheet is laid out top to
bottom (tables stacked, charts anchored to the right), and a sheet has at most one filter, on its
main table. The Customers rows alone do not go through xlsxwriter's per-cell calls: polars makes
their XML a column at a time, in the form xlsxwriter's constant-memory mode gives it, and
``write_package`` puts it into the package xlsxwriter built (see "the Customers rows as XML" below);
for 100,000 customers that is about a sixth of the time of polars' own ``write_excel``.

Text is always written as text: with ``write_string`` (and the workbook is opened with
``strings_to_formulas`` / ``strings_to_urls`` off), and on the Customers sheet as inline strings,
so a customer named ``=HYPERLINK(...)`` stays a text cell (CWE-1236). Nothing here computes: the
numbers come from ``context.build_context`` and the customer rows from ``result.assignments``.
"""

from __future__ import annotations

from typing import Any, BinaryIO, TYPE_CHECKING

import datetime as dt
import io
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

if TYPE_CHECKING:
    from xlsxwriter.chart import Chart
    from xlsxwriter.format import Format
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "nan_inf_to_errors": True,
}
# Numbers end one space short of the cell's right edge ("_ " pads by a space's width), so a
# right-aligned number never touches the left-aligned text of the next column; dates are
# left-aligned like text.
NUMBER_FORMATS = {
    "int": "#,##0_ ",
    "money": "#,##0.00_ ",
    "change": "+#,##0.00_ ;-#,##0.00_ ;0.00_ ",
    "pct": "0.0%_ ",
    "float": "#,##0.000_ ",
    "p": "[<0.0001]0.00E+00_ ;0.0000_ ",
    "code": "0",
    "date": "yyyy-mm-dd",
    "text": "@",
}
EXCEL_MAX_ROWS = 1_048_576
EXCEL_EPOCH = dt.date(1899, 12, 30)
MAX_WIDTH = 60
SERIES_COLOURS = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#7f7f7f", "#a5a5a5")


def display_width(text: str) -> int:
    """Columns a text needs: East Asian wide characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _number_text(value: float, kind: str) -> str:
    """Roughly what Excel shows for a number of this kind, to size the column."""
    if kind in ("p", "pct"):
        return "0.00E+00"
    if kind in ("money", "float"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"


@dataclass
class Block:
    """Where a table landed: its header row, data rows (inclusive) and columns."""

    header: int
    first: int
    last: int
    first_col: int
    last_col: int


class Formats:
    """xlsxwriter formats by (kind, bold, good), created once each."""

    def __init__(self, book: xlsxwriter.Workbook, footer: str = "Page &P / &N"):
        self.book = book
        self.footer = f"&L&A&R{footer}"  # sheet name left, page numbers right, in the report language
        self._cache: dict[tuple[str, bool, bool], Format] = {}
        self.title = book.add_format({"bold": True, "font_size": 14, "font_color": "#1f4e79"})
        self.heading = book.add_format({"bold": True, "font_size": 11, "font_color": "#1f4e79"})
        self.header = book.add_format({"bold": True, "bg_color": "#dde6f0", "bottom": 1, "text_wrap": True,
                                       "valign": "top"})
        self.note = book.add_format({"italic": True, "font_color": "#595959"})
        # numbers are right-aligned one indent in from the cell edge, and so is their header: a
        # number never touches the left-aligned text of the next column, and sits under its heading
        self.header_number = book.add_format({"bold": True, "bg_color": "#dde6f0", "bottom": 1, "text_wrap": True,
                                              "valign": "top", "align": "right", "indent": 1})

    def header_for(self, kind: str) -> Format:
        return self.header if kind in ("text", "code", "date") else self.header_number

    def get(self, kind: str, bold: bool = False, good: bool = False) -> Format:
        key = (kind, bold, good)
        if key not in self._cache:
            spec: dict[str, Any] = {"num_format": NUMBER_FORMATS.get(kind, "General")}
            if kind == "date":
                spec["align"] = "left"
            if bold:
                spec["bold"] = True
            if good:
                spec.update({"bold": True, "font_color": "#006100", "bg_color": "#c6efce"})
            self._cache[key] = self.book.add_format(spec)
        return self._cache[key]


class SheetWriter:
    """Writes one worksheet strictly top to bottom and remembers the width each column needs."""

    def __init__(self, book: xlsxwriter.Workbook, name: str, formats: Formats):
        self.book = book
        self.name = name
        self.ws = book.add_worksheet(name)
        page_setup(self.ws, formats.footer)
        self.fmt = formats
        self.row = 0
        self.widths: dict[int, int] = {}
        self.print_header: int | None = None  # the main table's header row, repeated on every printed page

    def _measure(self, col: int, text: str) -> None:
        self.widths[col] = max(self.widths.get(col, 0), min(display_width(text) + 2, MAX_WIDTH))

    def put(self, row: int, col: int, value: Any, kind: str = "text", *, bold: bool = False, good: bool = False) -> None:
        """One cell: text as a string cell (never a formula), numbers with the kind's number format."""
        if value is None:
            return
        if isinstance(value, str) or kind == "text":
            text = str(value)
            self.ws.write_string(row, col, text, self.fmt.get("text", bold, good) if (bold or good) else None)
            self._measure(col, text)
            return
        self.ws.write_number(row, col, value, self.fmt.get(kind, bold, good))
        self._measure(col, _number_text(value, kind))

    def title(self, text: str) -> None:
        self.ws.write_string(self.row, 0, text, self.fmt.title)
        self.ws.set_row(self.row, 22)
        self.row += 1

    def heading(self, text: str) -> None:
        self.ws.write_string(self.row, 0, text, self.fmt.heading)
        self.row += 1

    def note(self, text: str) -> None:
        if text:
            self.ws.write_string(self.row, 0, text, self.fmt.note)
            self.row += 1

    def notes(self, heading: str, texts: list[str], *, gap_before: bool = False) -> None:
        """A heading and one note row per text; nothing at all when there are no texts."""
        if not texts:
            return
        if gap_before:
            self.skip()
        self.heading(heading)
        for text in texts:
            self.note(text)

    def skip(self, rows: int = 1) -> None:
        self.row += rows

    def facts(self, rows: list[dict[str, Any]]) -> Block:
        """Label / value pairs, one per row."""
        start = self.row
        for r in rows:
            self.put(self.row, 0, r["label"])
            self.put(self.row, 1, r["value"], r.get("kind", "text"))
            self.row += 1
        return Block(start, start, self.row - 1, 0, 1)

    def table(self, headers: list[str], kinds: list[str], rows: list[list[Any]], *, bold_last: bool = False,
              good: list[list[bool]] | None = None) -> Block:
        """A header row then one row per item; ``good`` marks cells to highlight (significant)."""
        header = self.row
        for c, h in enumerate(headers):
            self.ws.write_string(header, c, h, self.fmt.header_for(kinds[c] if c < len(kinds) else "text"))
            self.widths[c] = max(self.widths.get(c, 0), min(display_width(h) + 2, 28))  # headers wrap
        self.row += 1
        for i, values in enumerate(rows):
            bold = bold_last and i == len(rows) - 1
            for c, (value, kind) in enumerate(zip(values, kinds)):
                self.put(self.row, c, value, kind, bold=bold, good=bool(good and good[i][c]))
            self.row += 1
        return Block(header, header + 1, max(self.row - 1, header + 1), 0, len(headers) - 1)

    def finish(self, min_width: int = 8) -> None:
        for col, width in self.widths.items():
            self.ws.set_column(col, col, max(width, min_width))
        if self.print_header is not None:  # the title and the main table's header on every page
            self.ws.repeat_rows(0, self.print_header)

    def ref(self, block: Block, col: int) -> list[Any]:
        """A chart range: one column of a table's data rows."""
        return [self.name, block.first, col, block.last, col]


def page_setup(ws: Worksheet, footer: str = "&L&A&RPage &P / &N") -> None:
    """Printable: A4 landscape, one page wide (as many pages tall as needed), sheet name and page
    numbers in the footer, centred horizontally."""
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.center_horizontally()
    ws.set_footer(footer)


# --- the workbook ------------------------------------------------------------------------------

def write_xlsx(ctx: dict[str, Any], customers: pl.DataFrame, path: Path) -> None:
    """Write report.xlsx for ``ctx`` (see context.py) and every customer row to ``path``."""
    built = io.BytesIO()  # the package without the Customers rows: small
    book = xlsxwriter.Workbook(built, OPTIONS)
    book.set_properties({"title": ctx["meta"]["title"], "comments": f"segkit {ctx['meta']['segkit_version']}",
                         "created": _created(ctx)})
    formats = Formats(book, ctx["t"].get("page_footer", "Page &P / &N"))
    for sheet in (summary_sheet, actions_sheet, tiers_sheet, rfm_sheet, clusters_sheet, validation_sheet):
        sheet(book, formats, ctx)
    if ctx.get("clv"):
        clv_sheet(book, formats, ctx)
    if ctx.get("migration"):
        migration_sheet(book, formats, ctx)
    if ctx.get("movers"):
        movers_sheet(book, formats, ctx)
    quality_sheet(book, formats, ctx)
    rows = customers_sheets(book, formats, ctx, customers)
    book.close()
    write_package(built, rows, path)  # an OSError here is StagedDir's to report


UNDATED = dt.date(1980, 1, 1)  # creation date of a workbook whose input has no dates (the earliest a zip holds)


def _created(ctx: dict[str, Any]) -> dt.datetime:
    """The workbook's creation time is the as_of date, not the clock: same input, same bytes."""
    as_of = ctx["meta"]["as_of"]
    return dt.datetime.combine(dt.date.fromisoformat(as_of) if as_of else UNDATED, dt.time())


def _tier_rows(ctx: dict[str, Any], detailed: bool) -> tuple[list[str], list[str], list[list[Any]]]:
    t = ctx["t"]
    unit = f" ({ctx['currency']})" if ctx.get("currency") else ""
    other = t["tier_en"] if ctx["lang"] == "zh" else t["tier_zh"]
    headers = [t["tier"], other, t["lower_bound"] + unit, t["customers"], t["share_of_customers"],
               t["cum_share_of_customers"], t["annual_spend"] + unit, t["share_of_spend"], t["cum_share_of_spend"]]
    kinds = ["text", "text", "money", "int", "pct", "pct", "money", "pct", "pct"]
    rows = [[r["name"], r["other"], r["min"], r["customers"], r["share_of_customers"], r["cum_share_of_customers"],
             r["annual_spend"], r["share_of_spend"], r["cum_share_of_spend"]] for r in ctx["tiers"]["rows"]]
    total = ctx["tiers"]["total"]
    rows.append([t["total"], None, None, total["customers"], total["share_of_customers"], None,
                 total["annual_spend"], total["share_of_spend"], None])
    if not any(r["other"] for r in ctx["tiers"]["rows"]):  # one name per tier: no second name column
        headers.pop(1)
        kinds.pop(1)
        rows = [row[:1] + row[2:] for row in rows]
    if detailed:
        headers.append(t["avg_spend"])
        kinds.append("money")
        for row, r in zip(rows, ctx["tiers"]["rows"]):
            row.append(r["avg_spend"])
    return headers, kinds, rows


CHART_ROWS = 20  # rows left free for a chart placed under a table (480 px at the default row height)


def summary_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """As-of, coverage, currency; warnings; the tier Pareto table with its chart under it; customer
    mix; data quality; verdict. Everything sits in the first columns, on screen."""
    t = ctx["t"]
    s = SheetWriter(book, ctx["sheets"]["summary"], fmt)
    s.title(ctx["meta"]["title"])
    s.skip()
    s.facts(ctx["meta"]["facts"])
    s.skip()
    if ctx["warnings"]:
        s.notes(t["warnings"], [f"[{w['code']}] {w['message']}" for w in ctx["warnings"]])
        s.skip()
    s.heading(t["tiers_pareto"])
    s.note(ctx["tiers"]["headline"])
    headers, kinds, rows = _tier_rows(ctx, detailed=False)
    block = s.table(headers, kinds, rows, bold_last=True)
    tiers = Block(block.header, block.first, block.last - 1, 0, block.last_col)  # without the total row
    s.skip()
    spend_col, cum_col = len(headers) - 3, len(headers) - 1
    s.ws.insert_chart(s.row, 0, pareto_chart(book, s, tiers, t, spend_col, cum_col),
                      {"x_scale": 1.5, "y_scale": 1.3, "object_position": 3})
    s.skip(CHART_ROWS)
    if ctx["suggested_tiers"]:
        s.heading(t["suggested_tiers"])
        s.table([t["tier"], t["min_annual_spend"]], ["text", "money"],
                [[r["name"], r["min"]] for r in ctx["suggested_tiers"]])
        s.skip()
    s.heading(t["customer_mix"])
    for group in ctx["mix"]:
        s.table([group["title"], t["customers"], t["share"]], ["text", "int", "pct"],
                [[r["name"], r["customers"], r["share"]] for r in group["rows"]])
        s.skip()
    s.heading(t["data_quality"])
    s.facts(ctx["quality"]["counts"])
    s.skip()
    s.heading(t["validation"])
    s.note(ctx["validation"]["verdict"])
    s.finish()
    s.ws.set_column(0, 0, 34)
    s.ws.activate()


def pareto_chart(book: Workbook, s: SheetWriter, tiers: Block, t: dict[str, Any], spend_col: int = 6, cum_col: int = 8,
                 words: tuple[str, str, str] = ("annual_spend", "cum_share_of_spend", "pareto_chart")) -> Chart:
    """Columns of annual spend (or ``words``' value) per tier with its cumulative share on a second axis."""
    bars = book.add_chart({"type": "column"})
    bars.add_series({"name": t[words[0]], "categories": s.ref(tiers, 0), "values": s.ref(tiers, spend_col),
                     "fill": {"color": SERIES_COLOURS[0]}, "gap": 60})
    line = book.add_chart({"type": "line"})
    line.add_series({"name": t[words[1]], "categories": s.ref(tiers, 0), "values": s.ref(tiers, cum_col),
                     "y2_axis": True, "line": {"color": SERIES_COLOURS[1], "width": 2.25},
                     "marker": {"type": "circle", "size": 6, "fill": {"color": SERIES_COLOURS[1]},
                                "border": {"color": SERIES_COLOURS[1]}},
                     "data_labels": {"value": True, "position": "above", "num_format": "0%"}})
    bars.combine(line)
    bars.set_title({"name": t[words[2]], "name_font": {"size": 11}})
    bars.set_y_axis({"num_format": "#,##0", "major_gridlines": {"visible": True, "line": {"color": "#e0e0e0"}}})
    line.set_y2_axis({"num_format": "0%", "min": 0, "max": 1})
    bars.set_legend({"position": "bottom"})
    return bars


def tiers_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Tier table with bounds and averages; tier × churn risk and tier × lifecycle; stacked chart."""
    t, tiers = ctx["t"], ctx["tiers"]
    s = SheetWriter(book, ctx["sheets"]["tiers"], fmt)
    s.title(t["tiers"])
    headers, kinds, rows = _tier_rows(ctx, detailed=True)
    block = s.table(headers, kinds, rows, bold_last=True)
    s.ws.freeze_panes(block.header + 1, 1)
    s.print_header = block.header
    s.ws.autofilter(block.header, 0, block.last - 1, block.last_col)
    s.skip()
    s.heading(t["tier_by_churn"])
    churn = _crosstab(s, tiers["by_churn"], t)
    s.skip()
    s.heading(t["tier_by_lifecycle"])
    _crosstab(s, tiers["by_lifecycle"], t)
    chart = book.add_chart({"type": "column", "subtype": "stacked"})
    for j, name in enumerate(tiers["by_churn"]["columns"]):
        chart.add_series({"name": name, "categories": s.ref(churn, 0), "values": s.ref(churn, j + 1),
                          "fill": {"color": SERIES_COLOURS[(j + 1) % len(SERIES_COLOURS)]}, "gap": 60})
    chart.set_title({"name": t["tier_by_churn"], "name_font": {"size": 11}})
    chart.set_y_axis({"num_format": "#,##0"})
    chart.set_legend({"position": "bottom"})
    s.ws.insert_chart(churn.header - 1, len(tiers["by_lifecycle"]["columns"]) + 3, chart)
    if ctx["profit"]:
        s.skip()
        _profit_blocks(book, s, ctx)
    if ctx["outlook"]:
        s.skip()
        _outlook_blocks(s, ctx)
    s.finish()


def _outlook_blocks(s: SheetWriter, ctx: dict[str, Any]) -> None:
    """Tier -> predicted tier counts and the largest upgrade and downgrade candidates."""
    t, o = ctx["t"], ctx["outlook"]
    s.heading(t["outlook"])
    s.note(t["outlook_note"].format(up=o["upgrade"], down=o["downgrade"], same=o["same"]))
    s.heading(t["outlook_matrix"])
    s.table([t["tier"], *o["columns"]], ["text"] + ["int"] * len(o["columns"]),
            [[r["name"], *r["counts"]] for r in o["rows"]])
    headers = [t["customer_id"], t["customer_name"], t["tier"], t["predicted_tier"], t["p_alive"],
               t["predicted_revenue"], t["annual_spend"]]
    for title, rows in ((t["outlook_up"], o["up"]), (t["outlook_down"], o["down"])):
        if rows:
            s.skip()
            s.heading(title)
            s.table(headers, ["text"] * 4 + ["pct", "money", "money"],
                    [[r["id"], r["name"], r["tier"], r["predicted_tier"], r["p_alive"], r["predicted_revenue"],
                      r["annual_spend"]] for r in rows])


def _profit_blocks(book: Workbook, s: SheetWriter, ctx: dict[str, Any]) -> None:
    """Gross profit: the Pareto of profit beside the Pareto of spend, by tier (with its chart) and
    by persona."""
    t, p = ctx["t"], ctx["profit"]
    s.heading(t["profit"])
    if p["headline"]:
        s.note(p["headline"])
    s.table([t["profit_pareto_share"], t["profit_pareto_profit"], t["profit_pareto_spend"]], ["text", "pct", "pct"],
            [[f"{r['share']}%", r["profit"], r["spend"]] for r in p["pareto"]])
    s.skip()
    headers = [t["group"], t["customers"], t["gross_profit"], t["share_of_profit"], t["cum_share_of_profit"], t["margin"]]
    kinds = ["text", "int", "money", "pct", "pct", "pct"]
    for title, rows in ((t["profit_by_tier"], p["tiers"]), (t["profit_by_persona"], p["personas"])):
        s.heading(title)
        block = s.table(headers, kinds, [[r["name"], r["customers"], r["gross_profit"], r["share_of_profit"],
                                          r["cum_share_of_profit"], r["margin"]] for r in rows])
        if rows is p["tiers"]:
            s.ws.insert_chart(block.header - 1, len(headers) + 1, pareto_chart(
                book, s, block, t, 2, 4, ("gross_profit", "cum_share_of_profit", "profit_chart")))
            s.skip(max(CHART_ROWS - len(rows) - 2, 1))
        else:
            s.skip()


def _crosstab(s: SheetWriter, tab: dict[str, Any], t: dict[str, Any]) -> Block:
    headers = [t["tier"], *tab["columns"], t["total"]]
    rows = [[name, *counts, total] for name, counts, total in zip(tab["rows"], tab["counts"], tab["totals"])]
    return s.table(headers, ["text"] + ["int"] * (len(headers) - 1), rows)


def _heat(s: SheetWriter, heat: dict[str, Any], values: list[list[Any]], kind: str) -> Block:
    rows = [[r, *vals] for r, vals in zip(heat["rows"], values)]
    block = s.table(["", *heat["columns"]], ["text"] + [kind] * len(heat["columns"]), rows)
    s.ws.conditional_format(block.first, 1, block.last, block.last_col,
                            {"type": "3_color_scale", "min_color": "#f8fbff", "mid_color": "#9dc3e6",
                             "max_color": "#1f4e79"})
    return block


def rfm_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Segment table and size chart, R×F heat tables (colour scale), score cut points."""
    t, rfm = ctx["t"], ctx["rfm"]
    s = SheetWriter(book, ctx["sheets"]["rfm"], fmt)
    s.title(t["rfm"])
    rows = [[g["name"], g["zh"], g["r"], g["f"], g["m"], g["customers"], g["share"], g["monetary"]]
            for g in rfm["segments"]]
    block = s.table([t["segment"], t["segment_zh"], t["r_range"], t["f_range"], t["m_range"], t["customers"],
                     t["share"], t["net_amount"]], ["text"] * 5 + ["int", "pct", "money"], rows)
    s.ws.freeze_panes(block.header + 1, 1)
    s.print_header = block.header
    s.ws.autofilter(block.header, 0, block.last, block.last_col)
    s.skip()
    s.heading(t["heat_title"])
    _heat(s, rfm["heat"], rfm["heat"]["counts"], "int")
    s.skip()
    s.heading(t["heat_monetary_title"])
    _heat(s, rfm["heat"], rfm["heat"]["mean_monetary"], "money")
    s.skip()
    s.heading(t["cut_points"])
    s.facts([{"label": t["scoring_method"], "value": rfm["method"]}])
    s.table([t["metric"], t["score"], t["customers"], t["min"], t["max"]], ["text", "code", "int", "float", "float"],
            [[r["metric"], r["score"], r["customers"], r["min"], r["max"]] for r in rfm["cut_points"]])
    for c in rfm["collapsed"]:
        s.note(f"{t['collapsed']}{t['colon']}{c['metric']} {', '.join(str(x) for x in c['scores'])}")
    s.skip()
    s.facts([{"label": f"{t['score_means']}{t['colon']}{m['score']}", "value": m["mean"], "kind": "float"}
             for m in rfm["score_means"]])
    s.facts([{"label": t["others_combinations"], "value": ", ".join(rfm["others_combinations"])}])
    chart = book.add_chart({"type": "bar"})
    chart.add_series({"name": t["customers"], "categories": s.ref(block, 0), "values": s.ref(block, 5),
                      "fill": {"color": SERIES_COLOURS[0]}, "gap": 40,
                      "data_labels": {"value": True, "num_format": "#,##0"}})
    chart.set_title({"name": t["segment_chart"], "name_font": {"size": 11}})
    chart.set_y_axis({"reverse": True})
    chart.set_x_axis({"num_format": "#,##0"})
    chart.set_legend({"none": True})
    s.ws.insert_chart(1, 10, chart, {"x_scale": 1.3, "y_scale": 1.4})
    s.finish()


def clusters_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Cluster profiles in original units, centres (z-scores) with their chart, silhouette by k."""
    t, cl = ctx["t"], ctx["clusters"]
    s = SheetWriter(book, ctx["sheets"]["clusters"], fmt)
    s.title(t["clusters"])
    if not cl["available"]:
        s.note(f"{t['clusters_skipped']}{t['colon']}{cl['reason']}")
        s.finish()
        return
    zh = ctx.get("lang") == "zh"
    choice = f"（{cl['k_choice']}）" if zh else f" ({cl['k_choice']})"
    s.note(f"{t['k']} = {cl['k']}{choice}" + (("；" if zh else "; ") + cl["reduced_reason"] if cl["reduced_reason"] else ""))
    keys = ("cluster", "label", "customers", "share", "mean_recency_days", "median_recency_days", "mean_frequency",
            "median_frequency", "mean_monetary", "median_monetary", "mean_annual_spend", "median_annual_spend",
            "dominant_tier", "dominant_segment", "dominant_persona")
    kinds = ["code", "text", "int", "pct", "float", "float", "float", "float", "money", "money", "money", "money",
             "text", "text", "text"]
    block = s.table([t[k] for k in keys], kinds, [[p[k] for k in keys] for p in cl["profiles"]])
    s.ws.freeze_panes(block.header + 1, 2)
    s.print_header = block.header
    s.ws.autofilter(block.header, 0, block.last, block.last_col)
    s.skip()
    s.heading(t["centroids"])
    centres = s.table([t["cluster"], t["label"], *cl["features"]], ["code", "text"] + ["float"] * len(cl["features"]),
                      [[p["cluster"], p["label"], *p["z"]] for p in cl["profiles"]])
    chart_row = centres.header
    s.skip()
    s.heading(t["silhouette_by_k"])
    s.table([t["k"], t["silhouette"], t["k_choice"]], ["code", "float", "text"],
            [[r["k"], r["silhouette"], "✓" if r["chosen"] else ""] for r in cl["silhouette_by_k"]])
    s.skip()
    s.facts([{"label": t["customers_clustered"], "value": cl["customers_clustered"], "kind": "int"},
             {"label": t["customers_excluded"], "value": cl["customers_excluded"], "kind": "int"}])
    chart = book.add_chart({"type": "column"})
    features = [s.name, centres.header, 2, centres.header, centres.last_col]
    for i, p in enumerate(cl["profiles"]):
        row = centres.first + i
        chart.add_series({"name": f"{t['cluster']} {p['cluster']}: {p['label']}", "categories": features,
                          "values": [s.name, row, 2, row, centres.last_col],
                          "fill": {"color": SERIES_COLOURS[i % len(SERIES_COLOURS)]}})
    chart.set_title({"name": t["cluster_chart"], "name_font": {"size": 11}})
    chart.set_y_axis({"num_format": "0.0"})
    chart.set_x_axis({"label_position": "low"})
    chart.set_legend({"position": "bottom"})
    s.ws.insert_chart(chart_row, len(cl["features"]) + 3, chart, {"x_scale": 1.4, "y_scale": 1.3})
    s.finish()


def validation_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Verdict and the null-reference test behind it; stability; chi-square of attributes that did
    not build the clusters; then the descriptive tables, labelled as not evidence of groups."""
    t, v = ctx["t"], ctx["validation"]
    s = SheetWriter(book, ctx["sheets"]["validation"], fmt)
    s.title(t["validation"])
    s.note(v["verdict"])
    if not v["available"]:
        s.finish()
        return
    _evidence_tables(s, t, v)
    _descriptive_tables(s, t, v)
    s.notes(t["warnings"], v["warnings"], gap_before=True)
    s.finish()
    s.ws.set_column(0, 0, 30)


def _evidence_tables(s: SheetWriter, t: dict[str, Any], v: dict[str, Any]) -> None:
    """The null-reference test, cluster stability and the chi-square tests of other attributes."""
    if v["null_test"]:
        s.skip()
        s.heading(t["null_test_title"])
        s.facts(v["null_test"])
        s.skip()
        s.table([t["null_name"], t["null_statistic"], "k", t["observed"], t["null_mean"], t["null_sd"],
                 t["replicates"], t["p_monte_carlo"], t["rejects"], t["reason"]],
                ["text", "text", "int", "float", "float", "float", "int", "p", "text", "text"],
                [[r["null"], r["statistic_name"], r["k"], r["statistic"], r["null_mean"], r["null_sd"],
                  r["replicates"], r["p"], r["rejects"], r["reason"]] for r in v["null_tests"]])
    if v["stability"]["rows"]:
        s.skip()
        s.heading(t["stability_title"])
        s.note(v["stability"]["note"])
        s.table([t["cluster"], t["label"], t["jaccard"], t["reading"]], ["code", "text", "float", "text"],
                [[r["cluster"], r["label"], r["jaccard"], r["reading"]] for r in v["stability"]["rows"]])

    def yes(flag: bool | None) -> str | None:
        return None if flag is None else (t["yes"] if flag else t["no"])

    s.skip()
    s.heading(t["chi2_title"])
    rows = [[c["variable"], c["chi2"], c["dof"], c["p"], c["cramers_v"], c["low_expected_share"],
             yes(c["significant"]), c["skipped_reason"]] for c in v["chi2"]]
    good = [[False, False, False, bool(c["significant"]), False, False, bool(c["significant"]), False]
            for c in v["chi2"]]
    s.table([t["variable"], t["chi2"], t["dof"], t["p"], t["cramers_v"], t["low_expected_share"], t["significant"],
             t["not_tested"]], ["text", "float", "int", "p", "float", "pct", "text", "text"], rows, good=good)


def _descriptive_tables(s: SheetWriter, t: dict[str, Any], v: dict[str, Any]) -> None:
    """Per-feature tests, model fit, Tukey HSD and cross tables: descriptions, not evidence of groups."""
    s.skip()
    s.heading(t["descriptive_title"])
    s.note(v["descriptive_note"])
    s.skip()
    s.heading(t["per_feature_tests"])
    s.table([t["feature"], t["anova_f"], t["anova_p"], t["eta2"], t["kruskal_h"], t["kruskal_p"], t["epsilon2"]],
            ["text", "float", "p", "float", "float", "p", "float"],
            [[f["feature"], f["f"], f["p_anova"], f["eta2"], f["h"], f["p_kruskal"], f["epsilon2"]]
             for f in v["features"]])
    s.skip()
    s.heading(t["model_fit"])
    s.facts(v["fit"])
    s.skip()
    s.heading(t["tukey_title"])
    s.table([t["feature"], t["cluster_a"], t["cluster_b"], t["mean_diff"], t["p"]],
            ["text", "code", "code", "float", "p"],
            [[r["feature"], r["a"], r["b"], r["mean_diff"], r["p"]] for r in v["tukey"]])
    if v["cross_tables"]:
        s.skip()
        s.heading(t["cross_tables_title"])
        for tab in v["cross_tables"]:
            s.table([tab["title"], *tab["columns"], t["total"]], ["code"] + ["int"] * (len(tab["columns"]) + 1),
                    [[r, *counts, total] for r, counts, total in zip(tab["rows"], tab["counts"], tab["totals"])])
            s.skip()


def _column_chart(book: Workbook, s: SheetWriter, block: Block, col: int, title: str) -> Chart:
    chart = book.add_chart({"type": "column"})
    chart.add_series({"name": title, "categories": s.ref(block, 0), "values": s.ref(block, col),
                      "fill": {"color": SERIES_COLOURS[0]}, "gap": 60})
    chart.set_title({"name": title, "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    return chart


def clv_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """CLV: model facts and parameters, p(alive) distribution, value at risk by tier, backtest, lost."""
    c = ctx["clv"]
    L = c["L"]
    s = SheetWriter(book, ctx.get("sheets", {}).get("clv", "CLV"), fmt)
    s.title(L["clv"])
    if not c["fitted"]:
        s.note(f"{L['skipped']}{ctx['t']['colon']}{c['skipped_reason']}")
    else:
        s.facts([{"label": f["label"], "value": f["value"], "kind": "float" if isinstance(f["value"], float) else "int"}
                 for f in c["facts"]])
        s.skip()
        s.table([L["model"], L["parameter"], L["value"]], ["text", "text", "float"], c["params"])
        s.skip()
        s.heading(L["p_alive_dist"])
        bins = s.table([L["p_alive"], L["customers"]], ["text", "int"], [[b["label"], b["customers"]] for b in c["bins"]])
        s.ws.insert_chart(bins.header, 6, _column_chart(book, s, bins, 1, L["p_alive_dist"]))
    _risk_table(s, c)
    s.note(f"{L['churn_rule']}{ctx['t']['colon']}{c['churn_rule']}")
    if c.get("selection"):
        s.note(f"{L['model_choice']}{ctx['t']['colon']}{c['selection']}")
    bt = c.get("backtest")
    if bt:
        s.skip()
        s.heading(L["backtest"])
        s.note(bt["summary"])
        if bt["rows"]:
            block = s.table([L["repeat_purchases"], L["customers"], L["predicted_mean"], L["actual_mean"], L["naive_mean"]],
                            ["text", "int", "float", "float", "float"],
                            [[r["repeat_purchases"], r["customers"], r["predicted_mean"], r["actual_mean"], r["naive_mean"]]
                             for r in bt["rows"]])
            chart = _column_chart(book, s, block, 2, L["predicted_mean"])
            chart.add_series({"name": L["actual_mean"], "categories": s.ref(block, 0), "values": s.ref(block, 3),
                              "fill": {"color": SERIES_COLOURS[1]}})
            chart.set_legend({"position": "bottom"})
            chart.set_title({"name": L["backtest"], "name_font": {"size": 11}})
            s.ws.insert_chart(block.header, 6, chart)
    s.skip()
    s.heading(L["lost"].format(n=c["lost_count"]))
    t = ctx["t"]
    s.table([t["customer_id"], t["last_order_date"], t["monetary"]], ["text", "text", "money"],
            [[r["customer_id"], r.get("last_order_date"), r.get("monetary")] for r in c["lost"]])
    s.finish()


def _risk_table(s: SheetWriter, c: dict[str, Any]) -> None:
    """Value at risk by tier; the medium-risk value beside it when the recency rule priced the risk."""
    if not c["risk"]:
        return
    L = c["L"]
    keys = ["customers", "high_risk_customers", "recent_value", "value_at_risk"]
    if not c["risk_by_p_alive"]:
        keys.append("medium_risk_value")
    if c["fitted"]:
        keys.append("predicted_revenue")
    kinds = {"customers": "int", "high_risk_customers": "int"}
    s.skip()
    s.heading(L["risk_by_tier"])
    s.table([L["tier"], *[L[k] for k in keys]], ["text", *[kinds.get(k, "money") for k in keys]],
            [[r["tier"], *[r[k] for k in keys]] for r in c["risk"]])
    s.note(c["risk_note"])


def migration_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Tier changes, the previous × current matrix (counts, spend) and every lost customer."""
    t, m = ctx["t"], ctx["migration"]
    s = SheetWriter(book, ctx["sheets"]["migration"], fmt)
    s.title(t["migration"])
    s.facts([{"label": t["previous"], "value": m["previous"]}])
    s.note(m["unknown_tiers"])
    prev = m.get("at_previous")
    if prev:
        s.note(prev["note"])
    s.skip()
    extra = [t["at_previous_bounds"]] if prev else []
    s.table([t["change"], t["customers"], *extra], ["text", "int", *["int"] * len(extra)],
            [[c["name"], c["customers"], *([c["at_previous"]] if prev else [])] for c in m["changes"]])
    matrices = [(t["migration_counts"], m["rows"], m["columns"], m["counts"], "int")]
    if prev:
        matrices.append((t["migration_counts_previous_bounds"], prev["rows"], prev["columns"], prev["counts"], "int"))
    matrices.append((t["migration_spend"], m["rows"], m["columns"], m["spend"], "money"))
    for title, rows, columns, matrix, kind in matrices:
        s.skip()
        s.heading(title)
        block = s.table(["", *columns], ["text"] + [kind] * len(columns),
                        [[label, *row] for label, row in zip(rows, matrix)])
        s.ws.conditional_format(block.first, 1, block.last, block.last_col,
                                {"type": "2_color_scale", "min_color": "#f8fbff", "max_color": "#5b9bd5"})
    s.skip()
    s.heading(t["lost_customers"])
    block = s.table([t["customer_id"], t["customer_name"], t["previous_tier"], t["previous_annual_spend"]],
                    ["text", "text", "text", "money"],
                    [[r["customer_id"], r["customer_name"], r["previous_tier"], r["previous_annual_spend"]]
                     for r in m["lost"]])
    s.ws.autofilter(block.header, 0, block.last, block.last_col)
    s.ws.freeze_panes(1, 0)
    s.finish()


def actions_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Recommended actions per tier and per persona, next to each group's size and share of spend."""
    t, a = ctx["t"], ctx["actions"]
    s = SheetWriter(book, ctx["sheets"]["actions"], fmt)
    s.title(t["actions"])
    fields = a["fields"]
    headers = [t["group"], t["customers"], t["share_of_customers"], t["share_of_spend"], *[f["label"] for f in fields]]
    kinds = ["text", "int", "pct", "pct", *["text"] * len(fields)]
    for key, title in (("tier", t["actions_by_tier"]), ("persona", t["actions_by_persona"])):
        s.heading(title)
        block = s.table(headers, kinds, [[r["name"], r["customers"], r["share"], r["share_of_spend"],
                                          *[r[f["key"]] for f in fields]] for r in a[key]])
        if key == "tier":
            s.print_header = block.header
            s.ws.freeze_panes(block.header + 1, 1)
        s.skip()
    wrap = book.add_format({"text_wrap": True, "valign": "top", "indent": 1})  # clear of the share beside it
    s.finish()
    s.ws.set_column(4, 3 + len(fields), 30, wrap)


def movers_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Every customer who moved up, down, was new or lost, with spend then and now, by spend change."""
    t, m = ctx["t"], ctx["movers"]
    s = SheetWriter(book, ctx["sheets"]["movers"], fmt)
    s.title(t["movers"])
    s.note(t["movers_note"])
    keys = ["customer_id", *(["customer_name"] if m["has_name"] else []), "movement", "previous_tier", "tier",
            "previous_annual_spend", "annual_spend", "spend_change"]
    labels = {"movement": t["movement"], "previous_tier": t["previous_tier"], "tier": t["tier"],
              "previous_annual_spend": t["spend_then"], "annual_spend": t["spend_now"],
              "spend_change": t["spend_change"]}
    kinds = {"previous_annual_spend": "money", "annual_spend": "money", "spend_change": "change"}
    block = s.table([labels.get(k, t.get(k, k)) for k in keys], [kinds.get(k, "text") for k in keys],
                    [[r.get(k) for k in keys] for r in m["rows"]])
    s.print_header = block.header
    s.ws.freeze_panes(block.header + 1, 1)
    s.ws.autofilter(block.header, 0, block.last, block.last_col)
    s.finish()


def quality_sheet(book: Workbook, fmt: Formats, ctx: dict[str, Any]) -> None:
    """Row counts, rejected reasons and counts, column mapping, reading notes."""
    t, q = ctx["t"], ctx["quality"]
    s = SheetWriter(book, ctx["sheets"]["quality"], fmt)
    s.title(t["data_quality"])
    block = s.table([t["measure"], t["value"]], ["text", "int"],
                    [[c["label"], c["value"]] for c in q["counts"] if c["kind"] != "pct"])
    s.ws.freeze_panes(block.header + 1, 0)
    s.print_header = block.header
    share = next((c for c in q["counts"] if c["kind"] == "pct"), None)
    if share:
        s.facts([share])
    s.skip()
    s.heading(t["rejected_rows"])
    if q["reasons"]:
        block = s.table([t["reason"], t["rows"], t["share_of_data_rows"]], ["text", "int", "pct"],
                        [[r["reason"], r["rows"], r["share"]] for r in q["reasons"]])
        s.ws.autofilter(block.header, 0, block.last, block.last_col)
    else:
        s.note(t["no_rejections"])
    s.skip()
    s.heading(t["column_mapping"])
    s.table([t["role"], t["header"]], ["text", "text"], [[r["role"], r["header"]] for r in q["mapping"]])
    s.skip()
    s.facts(q["input"])
    s.notes(t["notes"], q["notes"], gap_before=True)
    s.finish()


# --- every customer ----------------------------------------------------------------------------

def excel_values(df: pl.DataFrame) -> pl.DataFrame:
    """Dates as Excel serial day numbers, NaN as empty, any other non-number as text.

    Each cell is then one plain ``write_number`` or ``write_string``.
    """
    exprs = []
    for name, dtype in df.schema.items():
        if dtype == pl.Date:
            exprs.append((pl.col(name) - pl.lit(EXCEL_EPOCH)).dt.total_days().alias(name))
        elif dtype.is_float():
            exprs.append(pl.col(name).fill_nan(None))
        elif not dtype.is_integer() and dtype != pl.String:
            exprs.append(pl.col(name).cast(pl.String))
    return df.with_columns(exprs) if exprs else df


def translate(df: pl.DataFrame, mapping: dict[str, dict[str, str]]) -> pl.DataFrame:
    """Category codes (tier, segment, lifecycle, ...) in the report language."""
    exprs = [pl.col(c).replace(m) for c, m in mapping.items() if c in df.columns and m]
    return df.with_columns(exprs) if exprs else df


PRINT_COLUMNS = ("customer_id", "customer_name", "tier", "annual_spend", "yoy_growth", "recency_days", "frequency",
                 "monetary", "last_order_date", "rfm_segment", "value_class", "churn_risk")  # at most 12


def customers_sheets(book: Workbook, fmt: Formats, ctx: dict[str, Any], customers: pl.DataFrame) -> list[CustomerRows]:
    """Every assignments row; past Excel's row limit the rest continue on 'Customers 2', ...

    The key columns (PRINT_COLUMNS, those present) come first and are the print area: a printed
    page holds them at a readable size, landscape, with the header row on every page; the other
    columns follow on screen and in the filter."""
    per_sheet = EXCEL_MAX_ROWS - 1
    key = [c for c in PRINT_COLUMNS if c in customers.columns]
    order = key + [c for c in customers.columns if c not in key]
    from segkit.outputs.report.context import customer_columns

    shown = translate(customers.select(order), ctx.get("category_values") or {})
    columns = customer_columns(shown, ctx.get("t"))["columns"]  # widths of the words shown, not of the codes
    values = excel_values(shown)
    parts = max(1, -(-values.height // per_sheet))
    sheets = []
    for part in range(parts):
        base = ctx.get("sheets", {}).get("customers", "Customers")
        name = base if part == 0 else f"{base} {part + 1}"
        sheets.append(_customer_sheet(book, fmt, columns, name, values.slice(part * per_sheet, per_sheet), len(key)))
    return sheets


def _customer_sheet(book: Workbook, fmt: Formats, columns: list[dict[str, Any]], name: str, df: pl.DataFrame,
                    printed: int) -> CustomerRows:
    """The sheet's header, column formats and widths, panes, filter and print setup; its rows are
    left for ``write_package`` (returned)."""
    ws = book.add_worksheet(name)
    page_setup(ws, fmt.footer)
    ws.repeat_rows(0)
    ws.print_area(0, 0, max(df.height, 1), max(printed, 1) - 1)
    formats: list[Format | None] = []
    for c, col in enumerate(columns):
        formats.append(None if col["kind"] == "text" else fmt.get(col["kind"]))
        ws.set_column(c, c, col["width"], formats[-1])
        ws.write_string(0, c, col.get("header", col["name"]), fmt.header_for(col["kind"]))
    ws.freeze_panes(1, 2 if len(columns) > 1 else 0)
    ws.autofilter(0, 0, max(df.height, 1), len(columns) - 1)
    # worksheets are numbered in the package in the order they were added (there are no chartsheets)
    return CustomerRows(f"xl/worksheets/sheet{book.worksheets().index(ws) + 1}.xml", df, formats)


# --- the Customers rows as XML -------------------------------------------------------------------
#
# xlsxwriter spends some 25 µs of Python per cell (a row of 32 columns costs it 0.8 ms), which made
# the Customers sheet nearly all of the report's time. Its rows are therefore written here: polars
# makes each row's XML in one pass over a column at a time, exactly as xlsxwriter's constant-memory
# mode writes it (inline strings, the column's format as each cell's style, empty cells left out),
# and the text goes into the package where xlsxwriter left the sheet's data. Numbers are written in
# their shortest exact form (polars' float to text) rather than xlsxwriter's 16 significant digits,
# which could change a value in its last bit (87782818.57 was written as 87782818.56999999).

ROW_NUMBER = "\x00row"  # a column name no assignments column has
CHUNK_ROWS = 25_000  # rows made into XML at a time: bounds the memory of the text
XLSX_MAX_STRING = 32_767  # Excel's limit on a cell's text, in UTF-16 units (xlsxwriter truncates)
CONTROL = [chr(i) for i in (*range(0x00, 0x09), *range(0x0B, 0x20))] + ["\ufffe", "\uffff"]


@dataclass
class CustomerRows:
    """One Customers sheet's rows, still to be written into the package at ``part``."""

    part: str
    values: pl.DataFrame  # as ``excel_values`` makes them
    formats: list[Format | None]  # each column's format; its style index is known once the book is closed


def _utf16_truncate(text: str, limit: int = XLSX_MAX_STRING) -> str:
    """At most ``limit`` UTF-16 units, never splitting a character (as xlsxwriter truncates)."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text


def _text_cell(values: pl.DataFrame, name: str, start: pl.Expr) -> pl.Expr:
    """An inline-string cell: control characters as _xHHHH_ (a literal _xHHHH_ protected by
    _x005F), & < > escaped, xml:space="preserve" when the text starts or ends with white space."""
    s = values[name]
    text = pl.col(name)
    if (s.str.len_chars() > XLSX_MAX_STRING // 2).any():
        text = text.map_elements(_utf16_truncate, return_dtype=pl.String)
    if s.str.contains(r"_x[0-9a-fA-F]{4}_").any():
        text = text.str.replace_all(r"(_x[0-9a-fA-F]{4}_)", "_x005F${1}")
    if s.str.contains(r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]").any():
        for ch in CONTROL:
            text = text.str.replace_all(ch, f"_x{ord(ch):04X}_", literal=True)
    for ch, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        if s.str.contains(ch, literal=True).any():
            text = text.str.replace_all(ch, entity, literal=True)
    t = pl.lit("<t>")
    if s.str.contains(r"^\s|\s$").any():  # after the escapes, the white space left is what xlsxwriter's \s sees
        t = pl.when(text.str.contains(r"^\s|\s$")).then(pl.lit('<t xml:space="preserve">')).otherwise(t)
    return pl.concat_str([start, pl.lit(' t="inlineStr"><is>'), t, text, pl.lit("</t></is></c>")])


def _number_cell(values: pl.DataFrame, name: str, start: pl.Expr) -> pl.Expr:
    """A number cell; infinity as xlsxwriter writes it with ``nan_inf_to_errors`` (NaN is already empty)."""
    col = pl.col(name)
    text = col.cast(pl.String)
    if values.schema[name].is_float():
        text = text.str.strip_suffix(".0")  # 5 rather than 5.0, as Excel writes it
        cell = pl.concat_str([start, pl.lit("><v>"), text, pl.lit("</v></c>")])
        if values[name].is_infinite().any():
            formula = pl.when(col > 0).then(pl.lit("1/0")).otherwise(pl.lit("-1/0"))
            error = pl.concat_str([start, pl.lit(' t="e"><f>'), formula, pl.lit("</f><v>#DIV/0!</v></c>")])
            cell = pl.when(col.is_infinite()).then(error).otherwise(cell)
        return cell
    return pl.concat_str([start, pl.lit("><v>"), text, pl.lit("</v></c>")])


def _row_xml(values: pl.DataFrame, styles: list[int]) -> pl.Expr:
    """Each row's ``<row>`` element (the frame holds its Excel row number as ``ROW_NUMBER``);
    null where the row has no value at all, which xlsxwriter leaves out."""
    number = pl.col(ROW_NUMBER)
    parts: list[pl.Expr] = [pl.lit('<row r="'), number, pl.lit('">')]
    for c, (name, dtype) in enumerate(values.schema.items()):
        style = f' s="{styles[c]}"' if styles[c] else ""
        # a cell's start up to its attributes: <c r="B" + row number + " s="3"
        start = pl.concat_str([pl.lit(f'<c r="{xl_col_to_name(c)}'), number, pl.lit(f'"{style}')])
        parts.append(_text_cell(values, name, start) if dtype == pl.String else _number_cell(values, name, start))
    parts.append(pl.lit("</row>"))
    row = pl.concat_str(parts, ignore_nulls=True)
    return pl.when(pl.any_horizontal([pl.col(n).is_not_null() for n in values.columns])).then(row).alias("xml")


def _style(fmt: Format | None) -> int:
    """A column format's style index, which xlsxwriter gives it when it writes the sheet's columns."""
    if fmt is None:
        return 0
    if fmt.xf_index is None:
        raise RuntimeError("a Customers column format has no style index: write the rows after book.close()")
    return int(fmt.xf_index)


def _sheet_rows(rows: CustomerRows, fh: BinaryIO) -> int:
    """Write the sheet's rows as XML to ``fh``; return the Excel row number of the last one written
    (1, the header, when none has a value)."""
    values = rows.values
    present = values.select(pl.any_horizontal([pl.col(n).is_not_null() for n in values.columns])).to_series()
    if not present.any():
        return 1
    row = _row_xml(values, [_style(f) for f in rows.formats])
    for start in range(0, values.height, CHUNK_ROWS):
        chunk = values.slice(start, CHUNK_ROWS).with_row_index(ROW_NUMBER, offset=start + 2)
        xml = chunk.with_columns(pl.col(ROW_NUMBER).cast(pl.String)).select(row).drop_nulls()
        xml.write_csv(fh, include_header=False, quote_style="never", line_terminator="")
    return values.height + 1 - int(present.reverse().arg_max() or 0)


DIMENSION = re.compile(rb'<dimension ref="[^"]*"/>')


def write_package(built: io.BytesIO, sheets: list[CustomerRows], path: Path) -> None:
    """Copy the package xlsxwriter built to ``path``, each Customers sheet with its rows put in."""
    by_part = {s.part: s for s in sheets}
    # allowZip64 off, as xlsxwriter writes its packages: a part over 2 GiB fails rather than
    # needing ZIP64 extensions
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=False) as out:
        for info in src.infolist():
            data = src.read(info)
            rows = by_part.get(info.filename)
            if rows is None:
                out.writestr(info, data)
                continue
            end = data.index(b"</sheetData>")
            with tempfile.TemporaryFile() as fh:
                last = _sheet_rows(rows, fh)
                size = fh.tell()
                fh.seek(0)
                head = data[:end]
                if last > 1:  # the used range, as xlsxwriter sets it from the cells written
                    ref = f'<dimension ref="A1:{xl_rowcol_to_cell(last - 1, max(rows.values.width, 1) - 1)}"/>'
                    head = DIMENSION.sub(ref.encode(), head, count=1)
                tail = data[end:]
                info.file_size = len(head) + size + len(tail)
                with out.open(info, "w") as dst:
                    dst.write(head)
                    shutil.copyfileobj(fh, dst, 1 << 20)
                    dst.write(tail)
