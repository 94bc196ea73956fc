"""The reports: report.xlsx (every customer, native charts) and report.html (one self-contained page).

``write_reports`` builds the report context once (``context.build_context``: plain, JSON-safe
data, the only place that computes) and hands it to the writers, which only render it. Files go
through the run's ``StagedDir`` so they appear atomically with the rest of the outputs.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from pathlib import Path

from segkit.outputs.report.context import build_context

if TYPE_CHECKING:
    from segkit.outputs.staging import StagedDir
    from segkit.result import Segmentation

__all__ = ["build_context", "write_reports"]


def write_reports(result: Segmentation, staged: StagedDir) -> dict[str, Any]:
    """Write the reports named in ``result.config.reports`` ("xlsx", "html"); return the context.

    Both are views of the one result: its summary document (``result.document``) and its tables."""
    ctx = build_context(result, result.document)
    wanted = result.config.reports
    if "xlsx" in wanted:
        from segkit.outputs.report.excel import write_xlsx

        assignments = result.assignments
        staged.write("report.xlsx", lambda path: write_xlsx(ctx, assignments, Path(path)))
    if "html" in wanted:
        from segkit.outputs.report.html import render_html

        staged.write_bytes("report.html", render_html(ctx).encode("utf-8"))
    return ctx
