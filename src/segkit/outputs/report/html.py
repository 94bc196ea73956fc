"""report.html: render the report context with Jinja2 (autoescaped) into one self-contained file.

The page loads nothing: the CSS is inlined, the charts are inline SVG laid out by ``svg.py``, there
is no script, and a Content-Security-Policy (``default-src 'none'``) makes the browser refuse any
request should one ever slip in. The filters below only format numbers for display.
"""

from __future__ import annotations

from typing import Any

import math

from jinja2 import Environment, PackageLoader, StrictUndefined

DASH = "–"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_num(value: Any, digits: int = 0) -> str:
    """Thousands separators, ``digits`` decimals; a dash for no value."""
    return DASH if _missing(value) else f"{value:,.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    return DASH if _missing(value) else f"{value:.{digits}%}"


def fmt_p(value: Any) -> str:
    """p-values: four decimals, or scientific notation below 0.0001."""
    if _missing(value):
        return DASH
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def fmt_signed(value: Any, digits: int = 2) -> str:
    """A change: its sign always shown, thousands separators (+1,468,513.46)."""
    return DASH if _missing(value) else f"{value:+,.{digits}f}"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("segkit.outputs.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=fmt_num, pct=fmt_pct, pval=fmt_p, signed=fmt_signed)
    return env


def render_html(ctx: dict[str, Any]) -> str:
    """The report page for a context built by ``context.build_context``."""
    return environment().get_template("report.html.j2").render(**ctx)
