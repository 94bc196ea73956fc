"""Chart geometry for the HTML report, computed in Python so the template only draws.

Every function returns a plain dict (JSON-safe) of shapes in pixel coordinates::

    {"width", "height", "title",
     "rects": [{"x", "y", "w", "h", "fill", "title"}],
     "lines": [{"x1", "y1", "x2", "y2", "cls"}],
     "polylines": [{"points", "cls"}],
     "circles": [{"cx", "cy", "r", "cls", "title"}],
     "texts": [{"x", "y", "text", "anchor", "cls"}]}

The template's one ``chart`` macro turns any such dict into inline ``<svg>``; labels stay text and
are escaped by Jinja's autoescape like everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import math

PALETTE = ("#1f4e79", "#2e75b6", "#5b9bd5", "#9dc3e6", "#c9d9ea", "#7f7f7f", "#a5a5a5", "#d0cece")
SERIES = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6")
HEAT_LOW = (244, 248, 251)
HEAT_HIGH = (8, 81, 156)


def _r(v: float) -> float:
    return round(float(v), 1)


def empty_chart(width: int, height: int, title: str) -> dict[str, Any]:
    return {"width": width, "height": height, "title": title, "rects": [], "lines": [], "polylines": [],
            "circles": [], "texts": []}


def nice_step(span: float, count: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^n) giving about ``count`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / count
    power: float = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def _colon(label: str) -> str:
    """The separator after a label in a tooltip: full-width after Chinese words."""
    return "：" if label[-1:] >= "\u3000" else ": "


def nice_range(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """Axis limits on round numbers that include ``lo``, ``hi`` and zero, with their ticks."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if lo == hi:
        hi = 1.0
    step = nice_step(hi - lo, count)
    start = math.floor(lo / step) * step
    stop = math.ceil(hi / step) * step
    ticks = [start + i * step for i in range(int(round((stop - start) / step)) + 1)]
    return start, stop, ticks


def compact(value: float, zh: bool = False) -> str:
    """Short axis labels: 1.2M / 350K in English, 1.2亿 / 4,696万 in Chinese."""
    a = abs(value)
    units = ((1e8, "亿"), (1e4, "万")) if zh else ((1e9, "B"), (1e6, "M"), (1e3, "K"))
    for size, suffix in units:
        if a >= size:
            return _short(value / size) + suffix
    return _short(value)


def _short(x: float) -> str:
    """Three significant digits below 1,000; whole numbers with separators above."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def text_width(text: str, size: float = 12) -> float:
    """Approximate width in pixels of a label: CJK characters are about twice as wide."""
    return sum(size if ord(ch) > 0x2E7F else size * 0.58 for ch in text)


def heat_color(value: float | None, top: float) -> str:
    """Colour of a heat-map cell: white-blue scale on value / top."""
    share = 0.0 if not value or top <= 0 else max(0.0, min(1.0, value / top))
    rgb = [round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heat_text_class(value: float | None, top: float) -> str:
    """Light text on dark cells."""
    return "on-dark" if value and top > 0 and value / top > 0.55 else "on-light"


class _Scale:
    """Linear map from data values to pixels."""

    def __init__(self, lo: float, hi: float, px_lo: float, px_hi: float):
        self.lo, self.hi, self.px_lo, self.px_hi = lo, hi, px_lo, px_hi

    def __call__(self, v: float) -> float:
        return self.px_lo + (v - self.lo) / (self.hi - self.lo) * (self.px_hi - self.px_lo)


def pareto(labels: list[str], spend: list[float], cum_share: list[float | None], *, title: str,
           zh: bool = False, legend: tuple[str, str] = ("", "")) -> dict[str, Any]:
    """Bars of spend per category with the cumulative share of spend as a line (right axis)."""
    width, height = 720, 340
    left, right, top, bottom = 72, 56, 40, 62
    chart = empty_chart(width, height, title)
    if not labels:
        return chart
    lo, hi, ticks = nice_range(min(spend), max(spend))
    y = _Scale(lo, hi, height - bottom, top)
    y2 = _Scale(0.0, 1.0, height - bottom, top)
    band = (width - left - right) / len(labels)
    for t in ticks:
        chart["lines"].append({"x1": left, "y1": _r(y(t)), "x2": width - right, "y2": _r(y(t)), "cls": "grid"})
        chart["texts"].append({"x": left - 6, "y": _r(y(t) + 4), "text": compact(t, zh), "anchor": "end",
                               "cls": "tick"})
    for share in (0, 0.25, 0.5, 0.75, 1.0):
        chart["texts"].append({"x": width - right + 6, "y": _r(y2(share) + 4), "text": f"{share:.0%}",
                               "anchor": "start", "cls": "tick"})
    points = []
    for i, (label, value, cum) in enumerate(zip(labels, spend, cum_share)):
        x0 = left + i * band + band * 0.18
        w = band * 0.64
        y_top, y_base = y(max(value, 0.0)), y(min(value, 0.0))
        chart["rects"].append({"x": _r(x0), "y": _r(y_top), "w": _r(w), "h": _r(max(y_base - y_top, 0.5)),
                               "fill": PALETTE[i % len(PALETTE)], "title": f"{label}{_colon(label)}{value:,.0f}"})
        chart["texts"].append({"x": _r(x0 + w / 2), "y": height - bottom + 18, "text": label, "anchor": "middle",
                               "cls": "label"})
        chart["texts"].append({"x": _r(x0 + w / 2), "y": height - bottom + 33, "text": compact(value, zh),
                               "anchor": "middle", "cls": "value"})
        if cum is not None:
            cx, cy = _r(x0 + w / 2), _r(y2(cum))
            points.append(f"{cx},{cy}")
            chart["circles"].append({"cx": cx, "cy": cy, "r": 4, "cls": "line-dot", "title": f"{label}{_colon(label)}{cum:.1%}"})
            chart["texts"].append({"x": _r(cx + 8), "y": _r(cy - 8), "text": f"{cum:.0%}", "anchor": "start",
                                   "cls": "line-value"})
    chart["lines"].append({"x1": left, "y1": _r(y(0)), "x2": width - right, "y2": _r(y(0)), "cls": "axis"})
    if points:
        chart["polylines"].append({"points": " ".join(points), "cls": "line"})
    _legend(chart, [(PALETTE[0], legend[0], "rect"), ("", legend[1], "line")], left, 16)
    return chart


def _legend(chart: dict[str, Any], items: list[tuple[str, str, str]], x: float, y: float) -> None:
    """A row of legend entries: a swatch (rect in ``colour`` or a line) and its text."""
    for colour, text, kind in items:
        if not text:
            continue
        if kind == "line":
            chart["lines"].append({"x1": x, "y1": y - 4, "x2": x + 16, "y2": y - 4, "cls": "line"})
        else:
            chart["rects"].append({"x": x, "y": y - 10, "w": 12, "h": 12, "fill": colour, "title": text})
        chart["texts"].append({"x": x + 20, "y": y, "text": text, "anchor": "start", "cls": "legend"})
        x += 32 + text_width(text)


def hbars(labels: list[str], values: list[float], texts: list[str], *, title: str) -> dict[str, Any]:
    """Horizontal bars, one per label, with a value text at the end of each bar."""
    row, left, right, top = 26, 190, 120, 8
    width = 720
    height = top * 2 + row * max(len(labels), 1)
    chart = empty_chart(width, height, title)
    if not labels:
        return chart
    x = _Scale(0.0, max(max(values), 1e-12), left, width - right)
    for i, (label, value, text) in enumerate(zip(labels, values, texts)):
        y0 = top + i * row
        w = max(x(max(value, 0.0)) - left, 0.0)
        chart["rects"].append({"x": left, "y": y0 + 4, "w": _r(w), "h": row - 8, "fill": SERIES[0],
                               "title": f"{label}{_colon(label)}{text}"})
        chart["texts"].append({"x": left - 8, "y": y0 + row / 2 + 4, "text": label, "anchor": "end", "cls": "label"})
        chart["texts"].append({"x": _r(left + w + 6), "y": y0 + row / 2 + 4, "text": text, "anchor": "start",
                               "cls": "value"})
    chart["lines"].append({"x1": left, "y1": top, "x2": left, "y2": height - top, "cls": "axis"})
    return chart


def heatmap(row_labels: list[str], col_labels: list[str], values: Sequence[Sequence[float]],
            texts: list[list[str]], *, title: str, tips: list[list[str]] | None = None) -> dict[str, Any]:
    """A grid of coloured cells (darker = larger), each with its text."""
    cell_w, cell_h, left, top = 96, 44, 56, 28
    width = left + cell_w * len(col_labels) + 8
    height = top + cell_h * len(row_labels) + 8
    chart = empty_chart(width, height, title)
    peak = max((v for row in values for v in row if v is not None), default=0.0)
    for j, label in enumerate(col_labels):
        chart["texts"].append({"x": left + j * cell_w + cell_w / 2, "y": top - 10, "text": label,
                               "anchor": "middle", "cls": "label"})
    for i, label in enumerate(row_labels):
        y0 = top + i * cell_h
        chart["texts"].append({"x": left - 10, "y": y0 + cell_h / 2 + 4, "text": label, "anchor": "end",
                               "cls": "label"})
        for j, value in enumerate(values[i]):
            x0 = left + j * cell_w
            tip = tips[i][j] if tips else texts[i][j]
            chart["rects"].append({"x": x0, "y": y0, "w": cell_w - 2, "h": cell_h - 2,
                                   "fill": heat_color(value, peak), "title": tip})
            chart["texts"].append({"x": x0 + cell_w / 2 - 1, "y": y0 + cell_h / 2 + 4, "text": texts[i][j],
                                   "anchor": "middle", "cls": heat_text_class(value, peak)})
    return chart


def grouped_bars(groups: list[str], series: list[str], values: list[list[float]], *, title: str) -> dict[str, Any]:
    """Vertical bars per group (e.g. cluster), one per series (e.g. feature), from a zero line.

    The y axis spans the data and zero: negative only when a value is (z-scores), so a chart of
    counts or means has no empty lower half."""
    width, height = 720, 320
    left, right, top, bottom = 56, 16, 40, 48
    chart = empty_chart(width, height, title)
    if not groups or not series:
        return chart
    known = [v for row in values for v in row if v is not None]
    low, high = min([0.0, *known]), max([0.0, *known])
    if low == high:
        high = 1.0
    lo, hi, ticks = nice_range(low, high, 6)
    signed = lo < 0
    y = _Scale(lo, hi, height - bottom, top)
    band = (width - left - right) / len(groups)
    bar = band * 0.7 / len(series)
    for t in ticks:
        chart["lines"].append({"x1": left, "y1": _r(y(t)), "x2": width - right, "y2": _r(y(t)), "cls": "grid"})
        chart["texts"].append({"x": left - 6, "y": _r(y(t) + 4), "text": (f"{t:+.1f}" if signed else f"{t:.1f}") if t else "0",
                               "anchor": "end", "cls": "tick"})
    for g, (group, row) in enumerate(zip(groups, values)):
        x_group = left + g * band + band * 0.15
        for s, value in enumerate(row):
            v = value or 0.0
            y_top, y_base = y(max(v, 0.0)), y(min(v, 0.0))
            chart["rects"].append({"x": _r(x_group + s * bar), "y": _r(y_top), "w": _r(bar * 0.92),
                                   "h": _r(max(y_base - y_top, 0.5)), "fill": SERIES[s % len(SERIES)],
                                   "title": f"{group} · {series[s]}{_colon(series[s])}" + (f"{v:+.2f}" if signed else f"{v:.2f}")})
        chart["texts"].append({"x": _r(left + g * band + band / 2), "y": height - bottom + 18, "text": group,
                               "anchor": "middle", "cls": "label"})
    chart["lines"].append({"x1": left, "y1": _r(y(0)), "x2": width - right, "y2": _r(y(0)), "cls": "axis"})
    _legend(chart, [(SERIES[i % len(SERIES)], name, "rect") for i, name in enumerate(series)], left, 18)
    return chart
