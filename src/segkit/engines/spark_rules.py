"""The rules of ``ingest/rules.py`` as Spark SQL column expressions (no Python UDFs on rows).

The patterns, constants and tables are ``ingest/rules.py``'s (regular expressions through
``rules.java``, its Java-dialect form); this module only turns them into Spark columns, as
``ingest/clean.py`` turns them into polars expressions. Each parser has the name of its polars
counterpart and must give the same result on every input: ``tests/test_spark_rules.py`` checks
that on a corpus of odd values, ``tests/test_rules.py`` on a table of cells with their expected
values and rejection reasons. What remains here is how Spark computes a rule: fast paths that
skip a regular expression, the calendar arithmetic, and the strftime translation.
Every conversion is a ``try_`` form, so the rules hold with ANSI mode on or off.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from segkit.errors import ConfigError
from segkit.ingest import rules
from segkit.ingest.rules import EXCEL_EPOCH_UNIX, FIRST_DAY, LAST_DAY, MAX_SERIAL, MICRO, TOTALS_FIRST, WHITE_SPACE, java

TOTALS = java(rules.TOTALS_PATTERN)
YMD = java(rules.YMD_DATE) + java(rules.YMD_TIME, digits="unicode")
COMPACT_DATE = java(rules.COMPACT_DATE)
SERIAL = java(rules.SERIAL)
ID_FLOAT = java(rules.ID_FLOAT, digits="unicode")
ID_FLOAT_TAIL = java(rules.ID_FLOAT_TAIL)
SIGNS = java(rules.SIGNS)
SEPARATORS = {mark: java(rules.SEPARATORS[mark]) for mark in rules.DECIMAL_MARKS}
BRACKETED = java(rules.BRACKETED)
BRACKETS = java(rules.BRACKETS)
SIGN_SPACE = java(rules.SIGN_SPACE)
TRAILING_MINUS = java(rules.TRAILING_MINUS, digits="unicode")
MINUS_TAIL = java(rules.MINUS_TAIL)
NUMBER = {mark: java(rules.number_pattern(mark)) for mark in rules.DECIMAL_MARKS}


def strip(c: Column) -> Column:
    """polars ``str.strip_chars()``: Unicode whitespace off both ends (a character-set trim, no
    regular expression: it runs on every cell)."""
    return F.trim(c, F.lit(WHITE_SPACE))


def text(c: Column) -> Column:
    """Stripped text, empty -> null (``clean._text``)."""
    s = strip(c)
    return F.when(s != "", s)


DIGITS = "0123456789"


def _non_digits(s: Column) -> Column:
    """The text without its ASCII digits (a character map, no regular expression)."""
    return F.translate(s, DIGITS, "")


def is_totals(c: Column) -> Column:
    """``TOTALS`` on stripped text, null for null; the pattern runs only on text that can match."""
    s = strip(c)
    return F.when(F.substring(s, 1, 1).isin(*TOTALS_FIRST), s.rlike(TOTALS)).when(s.isNotNull(), F.lit(False))


def parse_customer_id(c: Column) -> Column:
    """``17850.0`` -> ``17850``; everything else kept as stripped text. Ids of plain digits (most
    of them) skip the regular expression."""
    s = text(c)
    plain = _non_digits(s) == ""
    trailing_zeros = s.rlike(ID_FLOAT)
    return F.when(plain, s).when(trailing_zeros, F.regexp_replace(s, ID_FLOAT_TAIL, "")).otherwise(s)


def plain_number(s: Column) -> Column:
    """True for ``12``, ``-12.5``, ``.5``, ``5.``: ASCII digits, at most one point, a leading minus;
    the rules give such text its cast, so it needs none of their regular expressions."""
    rest = _non_digits(s)
    has_digit = F.length(s) > F.length(rest)
    return has_digit & (rest.isin("", ".") | (rest.isin("-", "-.") & s.startswith("-")))


def parse_amount(c: Column, decimal: str = ".") -> Column:
    """Text -> double, null when empty or unparsable (``clean.parse_amount``)."""
    s = strip(c)
    if decimal == ",":  # "12,5" is plain: swapped, it reads as "12.5"; "1.234" is not
        plain, cast = plain_number(F.translate(s, ",.", ".,")), F.translate(s, ",", ".").try_cast("double")
    else:
        plain, cast = plain_number(s), s.try_cast("double")
    v = F.when(plain, cast).otherwise(_parse_amount_rules(s, decimal))
    return F.when(F.abs(v) < F.lit(float("inf")), v)


def _parse_amount_rules(s: Column, decimal: str) -> Column:
    """Currency signs, thousands separators in groups of three, (negative) and trailing minus."""
    paren = s.rlike(BRACKETED)
    t = strip(F.regexp_replace(F.regexp_replace(s, SIGNS, ""), BRACKETS, ""))
    t = F.regexp_replace(t, SIGN_SPACE, "$1")
    trailing_minus = t.rlike(TRAILING_MINUS)
    t = F.when(trailing_minus, F.regexp_replace(t, MINUS_TAIL, "")).otherwise(t)
    digits = F.regexp_replace(t, SEPARATORS[decimal], "")
    if decimal == ",":
        digits = F.translate(digits, ",", ".")
    v = F.when(t.rlike(NUMBER[decimal]), digits.try_cast("double"))
    return F.when(paren | trailing_minus, -F.abs(v)).otherwise(v)


def _days_from_civil(y: Column, m: Column, d: Column) -> Column:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), any year."""
    yy = y - F.when(m <= 2, 1).otherwise(0)
    era = F.floor(yy / 400)
    yoe = yy - era * 400
    mp = (m + 9) % 12
    doy = F.floor((153 * mp + 2) / 5) + d - 1
    doe = yoe * 365 + F.floor(yoe / 4) - F.floor(yoe / 100) + doy
    return (era * 146097 + doe - 719468).cast("int")


def _valid_ymd(y: Column, m: Column, d: Column) -> Column:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = (F.when(m == 2, F.when(leap, 29).otherwise(28))
           .when(m.isin(4, 6, 9, 11), 30).otherwise(31))
    return (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim)


def _ymd_date(y: Column, m: Column, d: Column) -> Column:
    y, m, d = y.try_cast("int"), m.try_cast("int"), d.try_cast("int")
    return F.when(_valid_ymd(y, m, d), F.date_from_unix_date(_days_from_civil(y, m, d)))


def parse_date(c: Column, fmt: str = "") -> Column:
    """Text -> date, null when empty or unparsable (``clean.parse_date``)."""
    s = strip(c)
    if fmt:
        return _in_calendar(parse_date_format(s, fmt))
    iso = (F.length(s) == 10) & (_non_digits(s) == "--") & (F.substring(s, 5, 1) == "-") & (F.substring(s, 8, 1) == "-")
    # \d{4}-\d{2}-\d{2} (ASCII digits): Spark's own strict parser gives the rules' date or null (no
    # 30 February, no month 13; year 0 falls outside the calendar below), at a fraction of the cost
    # of the arithmetic the other forms need
    iso_date = F.try_to_date(s, "yyyy-MM-dd")
    return _in_calendar(F.when(iso, iso_date).otherwise(_parse_date_rules(s)))


def _in_calendar(date: Column) -> Column:
    """Null outside years 1..9999, as ``clean._in_calendar``."""
    return F.when(date.between(F.lit(FIRST_DAY.isoformat()).cast("date"), F.lit(LAST_DAY.isoformat()).cast("date")), date)


def _parse_date_rules(s: Column) -> Column:
    """Y-M-D with any separator and time, yyyymmdd, Excel serials: the full rules."""
    ymd = F.when(s.rlike(YMD), _ymd_date(F.regexp_extract(s, YMD, 1), F.regexp_extract(s, YMD, 2),
                                         F.regexp_extract(s, YMD, 3)))
    compact = F.when(s.rlike(COMPACT_DATE),
                     _ymd_date(F.substring(s, 1, 4), F.substring(s, 5, 2), F.substring(s, 7, 2)))
    serial = F.floor(F.when(s.rlike(SERIAL), s.try_cast("double")))
    from_serial = F.when((serial >= 1) & (serial <= MAX_SERIAL),
                         F.date_from_unix_date((serial + EXCEL_EPOCH_UNIX).cast("int")))
    return F.coalesce(ymd, compact, from_serial)


STRFTIME = {"%Y": "yyyy", "%m": "M", "%d": "d", "%y": "yy", "%H": "H", "%M": "m", "%S": "s",
            "%b": "MMM", "%B": "MMMM", "%e": "d", "%I": "h", "%p": "a"}
PADDED = {"M": "MM", "d": "dd", "H": "HH", "m": "mm", "s": "ss", "h": "hh"}


class UnsupportedDateFormat(ValueError):
    """A strftime directive with no Spark datetime pattern equivalent."""


def java_pattern(fmt: str) -> str:
    """strftime -> Spark datetime pattern. Like chrono, a lone number may have one or two digits;
    two numbers with nothing between them (``%Y%m%d``) take their full width. Text is quoted."""
    tokens: list[tuple[bool, str]] = []  # (is a directive, text)
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] != "%":
            key = fmt[i:i + 2]
            if key not in STRFTIME:
                raise UnsupportedDateFormat(key)
            tokens.append((True, STRFTIME[key]))
            i += 2
        else:
            step = 2 if fmt[i:i + 2] == "%%" else 1
            if tokens and not tokens[-1][0]:
                tokens[-1] = (False, tokens[-1][1] + fmt[i])
            else:
                tokens.append((False, fmt[i]))
            i += step
    out = []
    for k, (directive, text) in enumerate(tokens):
        if not directive:
            out.append("'" + text.replace("'", "''") + "'")
            continue
        glued = any(0 <= j < len(tokens) and tokens[j][0] for j in (k - 1, k + 1))
        out.append(PADDED.get(text, text) if glued else text)
    return "".join(out)


def date_parser(fmt: str) -> Callable[[Column], Column]:
    """The order-date rule for the configured format; a format Spark cannot read is a config error."""
    try:
        java_pattern(fmt)
    except UnsupportedDateFormat as exc:
        msg = (f"config: input.date_format {fmt!r}: {exc} is not read by the spark engine; "
               f"use %Y %m %d %y %H %M %S %b %B %I %p, or the polars engine")
        raise ConfigError(msg) from None
    return lambda c: parse_date(c, fmt)


def parse_date_format(s: Column, fmt: str) -> Column:
    pattern = java_pattern(fmt)
    return F.coalesce(F.try_to_date(s, pattern),
                      F.to_date(F.try_to_timestamp(s, F.lit(pattern))))


def to_micro(amount: Column, unit: float) -> Column:
    """Currency units (double) -> whole micro-units as the polars engine rounds them:
    round half to even of ``amount * (unit * 1e6)``; null when it does not fit in 64 bits."""
    micro = F.rint(amount * F.lit(unit * MICRO))
    return micro
