"""Warnings: what the analyst is told besides the numbers.

Warnings are ``{"code", "message", "message_zh"}``; every one the run raises is in
``summary.json["warnings"]`` and shown by the terminal summary and both reports. Codes:
``tier_concentration``, ``short_coverage``, ``implausible_dates``, ``clv_skipped``,
``low_expected_counts``, ``customer_input``, ``clv_value_dependence``, ``formulas_without_values``,
``tier_bounds_changed`` (raised by ``customers/migration.py`` when the earlier run of
``--previous`` used other tier bounds).
"""

from __future__ import annotations

from typing import Any

LOW_EXPECTED_SHARE = 0.2


def warning(code: str, message: str, message_zh: str) -> dict[str, Any]:
    return {"code": code, "message": message, "message_zh": message_zh}


def catalog_warning(code: str, key: str | None = None, /, **fields: Any) -> dict[str, Any]:
    """A warning whose texts come from the message catalogs ([warning] ``key``, default ``code``)."""
    from segkit.i18n import message

    key = key or code
    return warning(code, message("warning", key, "en", **fields), message("warning", key, "zh", **fields))


def derived_warnings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Warnings read from validation's results: low expected counts in chi-square, its own notes.
    (CLV raises clv_skipped itself.)"""
    out = []
    val = doc.get("validation") or {}
    for w in val.get("warnings", []):
        if "expected counts" not in str(w):  # those are read from the chi-square table below
            out.append(warning("validation", str(w), str(w)))
    chi2 = val.get("chi2") or {}
    for column, c in chi2.items():
        low = c.get("low_expected_share") if isinstance(c, dict) else None
        if low is not None and low > LOW_EXPECTED_SHARE:
            from segkit.i18n import catalog

            zh = catalog("zh")["variable"].get(column, column)  # the attribute's Chinese word, when it has one
            out.append(catalog_warning("low_expected_counts", column={"en": column, "zh": zh}, share=low))
    return out


def with_chinese(w: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A warning raised by another step, with its Chinese text added when segkit knows it."""
    if w.get("message_zh"):
        return w
    from segkit.i18n import message

    clv = doc.get("clv") or {}
    zh = None
    if w["code"] == "clv_skipped":
        zh = message("warning", "clv_skipped", "zh", reason=clv.get("skipped_reason") or w["message"])
    elif w["code"] == "clv_value_dependence":
        r = (clv.get("independence_check") or {}).get("pearson_r_frequency_value")
        zh = message("warning", "clv_value_dependence", "zh", r=r) if r is not None else None
    return {**w, "message_zh": zh or w["message"]}
