"""The parsing and row-accounting rules, written once, as data: both engines build their
expressions from this module (``ingest/clean.py``: polars expressions; ``engines/spark_rules.py``
and ``engines/spark.py``: Spark columns). Neither engine writes a pattern, a reason text or a
constant of its own; what stays in an engine is how it computes a rule (the Spark engine's fast
paths and calendar arithmetic), which ``tests/test_rules.py`` and ``tests/test_spark_rules.py``
hold to the same results.

Regular expressions are written in the Rust dialect polars runs; ``java`` derives the pattern
Spark runs (``java.util.regex``): ``\\s`` (Unicode in Rust) is ``\\p{IsWhite_Space}``, ``$`` is
``\\z`` (Java's ``$`` also matches before a final line break), ``.`` runs in UNIX_LINES mode
(Java's ``.`` also stops at ``\\r``, ``\\u0085``, ``\\u2028``, ``\\u2029``), ``(?P<name>`` is
``(?<name>``, and ``\\d`` is ``[0-9]`` where the digits are converted to a number afterwards (a
non-ASCII digit matches Rust's ``\\d`` but then fails the conversion, so both engines reject it)
and ``\\p{Nd}`` where they are not (``digits="unicode"``).

``tests/test_rules.py`` walks a table of cells through both engines against these rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

# ------------------------------------------------------------------------------ constants

MICRO = 1_000_000  # amounts are whole micro-units (Int64, 1e-6 of the currency unit)
EXCEL_EPOCH = dt.date(1899, 12, 30)  # Excel serial 0
EXCEL_EPOCH_UNIX = (EXCEL_EPOCH - dt.date(1970, 1, 1)).days  # -25569
MAX_SERIAL = 2958465  # 9999-12-31
FIRST_DAY, LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)  # dates outside are unparsable
# A row whose amount in micro-units reaches this is rejected ("amount too large"): Int64 ends at 9.22e18.
OVERFLOW_MICRO = 9.0e18
# Money is summed exactly as Int64 micro-units. When the absolute amounts of a whole input add up
# to less than this, no sum segkit forms (a line, an order, a customer, a tier, the whole file)
# can leave Int64 (|x| < 2**63 ~ 9.22e18); the margin covers the float64 rounding of the check.
MONEY_LIMIT_MICRO = 9.0e18

# Unicode White_Space: what Rust's ``\s`` matches and char::is_whitespace (polars' strip_chars) removes
WHITE_SPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
               + "\u2028\u2029\u202f\u205f\u3000")
JAVA_WS = r"\p{IsWhite_Space}"

# ------------------------------------------------------------------ blank and totals rows

BLANK, TOTALS = "blank", "totals"  # why a row is left out (before any rejection): every cell
# empty or whitespace; a totals label in the first non-empty cell or in one of these columns
TOTALS_ROLES = ("customer_id", "customer_name")
TOTALS_PATTERN = (r"(?i)^(?:本页|本期|全部)?\s*(?:合\s*计|小\s*计|总\s*计)"
                  r"|^(?:grand\s*)?(?:sub\s*)?totals?\s*[:：]?\s*$")
# A totals label starts with one of these (after stripping): other text need not run the pattern.
TOTALS_FIRST = ("本", "全", "合", "小", "总", "g", "G", "s", "S", "t", "T")

# ---------------------------------------------------------------------------------- amounts

# Currency signs and codes removed before the number is read.
SIGNS = r"(?i)[¥￥$€£元]|RMB|CNY|USD|EUR|GBP"
# (1,234.00), -(12), $(12) and (1.5)元 are negative.
BRACKETED = r"^[-+]?\s*[¥￥$€£]?\s*\(.*\)\s*元?$"
BRACKETS = r"[()]"
SIGN_SPACE = r"^([+-])\s+"  # "- 12" -> "-12" (replacement: "$1")
TRAILING_MINUS = r"^\d[\d.,，\s]*-$"  # SAP's 1,234.00-: negative
MINUS_TAIL = r"-+$"  # what is taken off such a number before it is read
# Thousands separators a decimal mark allows: with ".", commas (also full-width) and spaces; with
# ",", points and spaces. Groups must be three digits, so "1,2,3" or "12 34" are not numbers.
SEPARATORS = {".": r"[\s,，]", ",": r"[\s.]"}
DECIMAL_MARKS = (".", ",")


def re_escape(text: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)


def number_pattern(decimal: str) -> str:
    """A number with ``decimal`` as its decimal mark, optionally grouped by threes."""
    sep, mark = SEPARATORS[decimal], re_escape(decimal)
    return (rf"^[+-]?(?:\d{{1,3}}(?:{sep}\d{{3}})+(?:{mark}\d*)?|\d+(?:{mark}\d*)?|{mark}\d+)"
            r"(?:[eE][+-]?\d+)?$")


# ------------------------------------------------------------------------------------ dates

# Y-M-D with - / . or 年月日, optionally a time (digits of the time are not converted).
YMD_DATE = r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
YMD_TIME = r"(?:(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)|(?:\s+00:00:00))?$"
YMD = YMD_DATE + YMD_TIME
COMPACT_DATE = r"^(\d{8})$"  # yyyymmdd
SERIAL = r"^(\d{1,7}(?:\.\d+)?)$"  # Excel serial day, fraction (the time) dropped

# ------------------------------------------------------------------------------ customer ids

ID_FLOAT = r"^\d+\.0+$"  # 17850.0, an integer the exporter wrote as a float -> 17850
ID_FLOAT_TAIL = r"\.0+$"

# ------------------------------------------------------------------------- the Java dialect


def java(pattern: str, digits: Literal["ascii", "unicode"] = "ascii") -> str:
    """``pattern`` (Rust dialect) as ``java.util.regex`` reads it, with the same matches.

    ``\\s`` -> ``\\p{IsWhite_Space}``; ``$`` (outside a class) -> ``\\z``; ``(?P<`` -> ``(?<``;
    ``\\d`` -> ``[0-9]`` (``digits="ascii"``: the text is converted to a number afterwards) or
    ``\\p{Nd}`` (``"unicode"``); ``(?d)`` in front when the pattern has a ``.`` wildcard; ``(?i)``
    -> ``(?iu)`` (Rust folds case by Unicode rules, Java by ASCII rules unless told: "totalſ", with
    a long s, is a totals label in both engines only so)."""
    out: list[str] = []
    in_class, wildcard, i = False, False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "s":
                out.append(JAVA_WS)
            elif nxt == "d":
                out.append(("0-9" if in_class else "[0-9]") if digits == "ascii" else r"\p{Nd}")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a leading "]" is a literal
                out.append("]")
                i += 1
        elif ch == "$":
            out.append(r"\z")
        elif pattern.startswith("(?P<", i):
            out.append("(?<")
            i += 4
            continue
        elif pattern.startswith("(?i)", i):
            out.append("(?iu)")
            i += 4
            continue
        else:
            wildcard = wildcard or ch == "."
            out.append(ch)
        i += 1
    return ("(?d)" if wildcard else "") + "".join(out)


# --------------------------------------------------------------------------------- rejection

KIND = {"order_date": "date"}  # what an unparsable cell is not; else a number
# Any text is a customer id (only an empty cell is missing), so no id is ever unparsable.
ALWAYS_PARSED = ("customer_id",)
# The roles a row must have, in the order their reasons win: the first role that is missing or
# unparsable is the reason; "amount too large" only when every one of them parsed.
CHECKED_ORDER = ("customer_id", "order_date", "amount", "quantity", "unit_price", "gross_profit", "cost")


@dataclass(frozen=True)
class Reason:
    code: str  # missing | unparsable | too_large
    role: str
    message: str  # what rejected rows say (reports map it to their language)


def _reasons() -> tuple[Reason, ...]:
    out = []
    for role in CHECKED_ORDER:
        out.append(Reason("missing", role, f"missing {role}"))
        if role not in ALWAYS_PARSED:
            out.append(Reason("unparsable", role, f"unparsable {role} (not a {KIND.get(role, 'number')})"))
    return (*out, Reason("too_large", "amount", "amount too large"))


REASONS = _reasons()  # every rejection reason, in the order a row's first one wins


E = TypeVar("E")


def profit_role(mapping: Mapping[str, str]) -> str | None:
    """The column that gives profit per line: ``gross_profit`` when the input has one, else
    ``cost`` (profit = amount - cost), else None (no profit figures)."""
    return next((r for r in ("gross_profit", "cost") if r in mapping), None)


def profit_micro(role: str, amount_micro: E, given_micro: E, subtract: Callable[[E, E], E]) -> E:
    """Profit of a line in micro-units from its ``role`` column (already in micro-units, rounded
    like the amount so the difference is exact): the gross_profit cell as given, else amount - cost."""
    return given_micro if role == "gross_profit" else subtract(amount_micro, given_micro)


def checked_roles(mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The roles every row of an input with ``mapping`` must have, in the order of ``REASONS``:
    customer_id, order_date, amount (or quantity and unit_price), then cost or gross_profit."""
    money = ("amount",) if "amount" in mapping else ("quantity", "unit_price")
    profit = profit_role(mapping)
    return ("customer_id", "order_date", *money, *((profit,) if profit else ()))


def reasons_for(checked: tuple[str, ...]) -> tuple[Reason, ...]:
    """The reasons a row of an input checking ``checked`` can get, in the order they win."""
    return tuple(r for r in REASONS if r.role in checked and r.code != "too_large") + (REASONS[-1],)


def overflow_roles(mapping: Mapping[str, str]) -> tuple[str, str]:
    """(the role whose column an "amount too large" row names, the role whose value it shows)."""
    return ("amount", "amount") if "amount" in mapping else ("quantity", "unit_price")


def reason_expr(checked: tuple[str, ...], when: Callable[[E, str, E | None], E], missing: Callable[[str], E],
                unparsable: Callable[[str], E], overflow: E) -> E:
    """The reason of a row as one engine expression: ``when(condition, message, otherwise)``
    builds the engine's conditional (``otherwise`` None: null), ``missing(role)`` and
    ``unparsable(role)`` its tests. The first reason of ``reasons_for(checked)`` that holds wins."""
    tests = {"missing": missing, "unparsable": unparsable}
    expr: E | None = None
    for r in reversed(reasons_for(checked)):
        expr = when(overflow if r.code == "too_large" else tests[r.code](r.role), r.message, expr)
    assert expr is not None
    return expr


# ---------------------------------------------------------------------- orders and purchases


def order_key(order_id: E | None, date_text: E, coalesce: Callable[[E, E], E]) -> E:
    """The order a line belongs to: its order id, else (no id, or an empty one) its date as
    ISO text, so the lines without an id form one order per customer and day."""
    return date_text if order_id is None else coalesce(order_id, date_text)


R_co = TypeVar("R_co", covariant=True)


class _Comparable(Protocol[R_co]):
    def __gt__(self, other: int, /) -> R_co: ...


def is_purchase(net: _Comparable[R_co]) -> R_co:
    """An order (or a customer's day) is a purchase when its summed amount is positive: returns
    and refunds net against the lines of their order or day, and an order that nets to zero or
    below is none."""
    return net > 0
