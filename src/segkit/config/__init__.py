"""Configuration: packaged defaults < config file < command-line overrides -> one frozen Config.

The defaults live in ``default.toml`` (shipped in the package, linked from ``configs/default.toml``).
A user file needs only the keys it changes; lists of tables (tiers, segments, personas) replace the
default list whole. Every key is validated against the defaults: an unknown key, a value of the
wrong type, or tiers that are unsorted or overlap raise ``ConfigError`` (exit 78) naming the key.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segkit.errors import ConfigError, option

DEFAULT_PATH = Path(__file__).with_name("default.toml")
ENV_VAR = "SEGKIT_CONFIG"

ROLES = (
    "customer_id",
    "customer_name",
    "order_date",
    "amount",
    "order_id",
    "quantity",
    "unit_price",
    "channel",
    "region",
    "customer_type",
    "category",
    "payment_terms_days",
)
TABLE_LISTS = ("tiers", "segments", "personas", "actions")
ACTION_FIELDS = ("service", "visits", "credit", "pricing", "channel")
TIER_SCHEMES = ("config", "quantile", "retail")
INPUT_KINDS = ("auto", "orders", "customers")
ENGINES = ("polars", "spark")
# The one place that lists the settings that must be one of a few words; the command line checks
# its flags against the same lists (a bad flag is a usage error, a bad file value a config error).
# counting models of the CLV step; auto chooses on a holdout (docs/clv.md)
CLV_MODELS = ("bgnbd", "pareto_nbd", "mbg_nbd", "auto")

CHOICES: dict[str, tuple[str, ...]] = {
    "scoring.method": ("quantile", "thresholds"),
    "input.kind": INPUT_KINDS,
    "input.engine": ENGINES,
    "input.decimal": ("auto", ".", ","),
    "output.lang": ("en", "zh"),
    "tiering.scheme": TIER_SCHEMES,
    "clv.model": CLV_MODELS,
}


@dataclass(frozen=True)
class Tier:
    name: str
    zh: str
    min: float | None  # inclusive lower bound; None for the last tier


@dataclass(frozen=True)
class Segment:
    name: str
    zh: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]

    def holds(self, r: int, f: int, m: int) -> bool:
        return (
            self.r[0] <= r <= self.r[1]
            and self.f[0] <= f <= self.f[1]
            and self.m[0] <= m <= self.m[1]
        )


@dataclass(frozen=True)
class Persona:
    name: str
    zh: str
    tier: tuple[str, ...] = ()
    lifecycle: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    """Recommended actions for one tier or persona: ``fields`` (ACTION_FIELDS) in en and zh."""

    kind: str  # "tier" | "persona"
    name: str
    en: dict[str, str]
    zh: dict[str, str]


@dataclass(frozen=True)
class ClvSettings:
    """The [clv] table: a counting model (``model``) + Gamma-Gamma over the next ``horizon_days``."""

    enabled: bool = True
    model: str = "bgnbd"  # bgnbd | pareto_nbd | mbg_nbd | auto (CLV_MODELS)
    auto_holdout_days: int = 90  # auto: the holdout is this or a quarter of the history, whichever is smaller
    horizon_days: int = 365
    annual_discount_rate: float = 0.0
    min_repeat_customers: int = 20
    churn_high: float = 0.3    # p_alive below this -> churn_risk high
    churn_medium: float = 0.7  # p_alive below this -> medium; low otherwise


@dataclass(frozen=True)
class Config:
    """The effective settings. default.toml holds every default; ``build`` fills every field."""

    # input
    input_kind: str
    encoding: str
    sheet: str | int
    date_format: str
    amount_unit: float
    max_bad_rows: float
    max_unpacked_mb: int
    max_shared_strings: int
    engine: str
    spark_master: str
    columns: dict[str, str]
    decimal: str  # "." | "," | "auto" (clean.resolve_decimal picks one per file)
    # analysis
    as_of: dt.date | None
    year: int
    rfm_window_days: int
    # scoring
    scoring_method: str
    recency_thresholds: tuple[float, ...]
    frequency_thresholds: tuple[float, ...]
    monetary_thresholds: tuple[float, ...]
    churn_high: float
    churn_medium: float
    churn_min_orders: int
    growing: float
    declining: float
    # clustering
    k: int | str
    k_min: int
    k_max: int
    random_state: int
    n_init: int
    silhouette_sample: int
    fit_sample: int
    extra_features: tuple[str, ...]
    # output
    output_dir: str
    reports: tuple[str, ...]
    lang: str
    currency: str
    # tiering
    tier_scheme: str
    quantile_shares: tuple[float, ...]
    concentration: float
    tiers: tuple[Tier, ...]
    segments: tuple[Segment, ...]
    personas: tuple[Persona, ...]
    clv: ClvSettings
    actions: tuple[Action, ...]
    # provenance: dotted key -> "default" | file path | "command line"
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    effective: dict[str, Any] = field(default_factory=dict, compare=False)


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few KB; /dev/zero or a stray data file is not one


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        msg = f"config file {path} not found; check the path given to {option('config')} or {ENV_VAR}"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot read config file {path}: {exc.strerror}"
        raise ConfigError(msg) from None
    if len(data) > MAX_CONFIG_BYTES:
        msg = f"config file {path}: larger than {MAX_CONFIG_BYTES >> 20} MB, not a segkit config; start from `segkit config init`"
        raise ConfigError(msg)
    try:
        text = data.decode("utf-8-sig")  # a BOM (Notepad's "UTF-8") is allowed
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        msg = f"{path}: line {line} is not UTF-8 text (is it a TOML file?); save it as UTF-8 or start from `segkit config init`"
        raise ConfigError(msg) from None
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a segkit config; start from `segkit config init`") from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML ({exc}); fix the line named, or start from `segkit config init`"
        raise ConfigError(msg) from None


def default_dict() -> dict[str, Any]:
    return _read_toml(DEFAULT_PATH)


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _merge(base: dict[str, Any], over: dict[str, Any], origin: str, sources: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Merge ``over`` into ``base`` (both plain dicts), checking keys and types against base."""
    out = dict(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if prefix == "" and key in TABLE_LISTS:
            if not isinstance(value, list):
                msg = f"{origin}: '{key}' must be a list of tables ([[{key}]]); see `segkit config init`"
                raise ConfigError(msg)
            out[key] = value
            sources[dotted] = origin
            continue
        if prefix == "columns.":
            if key not in ROLES:
                msg = f"{origin}: unknown column role '{key}' in [columns]; roles are: {', '.join(ROLES)}"
                raise bad_value(dotted, msg)
            if not isinstance(value, str) or not value:
                msg = f"{origin}: [columns] {key} must be the header text in your file, e.g. {key} = \"客户编码\""
                raise ConfigError(msg)
            out[key] = value
            sources[dotted] = origin
            continue
        if key not in base:
            section = prefix.rstrip(".") or "top level"
            known = ", ".join(sorted(base)) or "(none)"
            msg = f"{origin}: unknown key '{dotted}' ({section} has: {known}); remove it or fix the spelling"
            raise ConfigError(msg)
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                msg = f"{origin}: '{dotted}' must be a table ([{dotted}])"
                raise ConfigError(msg)
            out[key] = _merge(default, value, origin, sources, f"{dotted}.")
            continue
        if not _type_ok(dotted, default, value):
            msg = (f"{origin}: '{dotted}' must be {_type_name(default)}, got {value!r}; "
                   f"the default is {default!r}")
            raise bad_value(dotted, msg)
        out[key] = value
        sources[dotted] = origin
    return out


def _type_ok(dotted: str, default: Any, value: Any) -> bool:
    if dotted == "clustering.k":
        return value == "auto" or (isinstance(value, int) and not isinstance(value, bool))
    if dotted == "input.sheet":
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _flat_sources(d: dict[str, Any], origin: str, sources: dict[str, Any], prefix: str = "") -> None:
    for key, value in d.items():
        if isinstance(value, dict):
            _flat_sources(value, origin, sources, f"{prefix}{key}.")
        else:
            sources[f"{prefix}{key}"] = origin


def load(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    use_env: bool = True,
) -> Config:
    """Build the effective Config.

    ``path`` is the user's config file (``--config``); when it is None and ``use_env`` is true,
    the file named by the ``SEGKIT_CONFIG`` environment variable is used. ``overrides`` holds
    command-line values as dotted keys (``{"analysis.as_of": "2025-01-01"}``) and wins over both.
    """
    data = default_dict()
    sources: dict[str, str] = {}
    _flat_sources(data, "default", sources)
    if path is None and use_env and os.environ.get(ENV_VAR):
        path = os.environ[ENV_VAR]
        origin_label = f"{path} (${ENV_VAR})"
    else:
        origin_label = str(path) if path is not None else ""
    if path is not None:
        data = _merge(data, _read_toml(Path(path)), origin_label, sources)
    if overrides:
        nested: dict[str, Any] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = nested
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        data = _merge(data, nested, "command line", sources)
    return build(data, sources)


def _range(origin: str, value: Any) -> tuple[int, int]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int) and 1 <= v <= 5 for v in value) and value[0] <= value[1])
    if not ok:
        msg = f"{origin} must be [low, high] scores between 1 and 5, low <= high, got {value!r}"
        raise ConfigError(msg)
    return (value[0], value[1])


def _check_keys(origin: str, item: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = set(item) - allowed
    if unknown:
        msg = f"{origin}: unknown key '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(allowed))}"
        raise ConfigError(msg)
    missing = required - set(item)
    if missing:
        msg = f"{origin}: missing '{sorted(missing)[0]}'"
        raise ConfigError(msg)


def _str_list(origin: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        msg = f"{origin} must be a list of strings, got {value!r}"
        raise ConfigError(msg)
    return tuple(value)


def _tiers(items: list[Any]) -> tuple[Tier, ...]:
    if not items:
        raise ConfigError("config: [[tiers]] is empty; give at least one tier (the last one has no min)")
    tiers: list[Tier] = []
    for i, item in enumerate(items):
        origin = f"tiers[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"config: {origin} must be a table with name, zh and min")
        _check_keys(origin, item, {"name", "zh", "min"}, {"name"})
        last = i == len(items) - 1
        lo = item.get("min")
        if last and lo is not None:
            msg = (f"config: {origin} ('{item['name']}') is the last tier and must have no min: "
                   "it holds every customer below the tier above")
            raise ConfigError(msg)
        if not last and not _is_amount(lo):
            msg = (f"config: {origin} ('{item['name']}') needs a numeric min (inclusive lower bound of "
                   f"annual_spend) of at most {MAX_AMOUNT:,.0f} in absolute value, got {lo!r}")
            raise ConfigError(msg)
        if tiers and lo is not None and tiers[-1].min is not None and lo >= tiers[-1].min:
            msg = (f"config: tiers must be sorted from the highest min down without overlap: "
                   f"'{item['name']}' (min {lo:g}) is not below '{tiers[-1].name}' (min {tiers[-1].min:g})")
            raise ConfigError(msg)
        tiers.append(Tier(str(item["name"]), str(item.get("zh", item["name"])),
                          None if lo is None else float(lo)))
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ConfigError(f"config: tier names must be unique, got {names}")
    return tuple(tiers)


def _segments(items: list[Any]) -> tuple[Segment, ...]:
    out = []
    for i, item in enumerate(items):
        origin = f"segments[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"config: {origin} must be a table with name, zh, r, f, m")
        _check_keys(origin, item, {"name", "zh", "r", "f", "m"}, {"name", "r", "f", "m"})
        out.append(Segment(str(item["name"]), str(item.get("zh", item["name"])),
                           _range(f"config: {origin}.r", item["r"]),
                           _range(f"config: {origin}.f", item["f"]),
                           _range(f"config: {origin}.m", item["m"])))
    return tuple(out)


def _personas(items: list[Any]) -> tuple[Persona, ...]:
    out = []
    for i, item in enumerate(items):
        origin = f"personas[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"config: {origin} must be a table")
        _check_keys(origin, item, {"name", "zh", "tier", "lifecycle", "columns", "contains"}, {"name"})
        kinds = [k for k in ("tier", "lifecycle", "columns") if k in item]
        if len(kinds) != 1 or (("columns" in item) != ("contains" in item)):
            msg = (f"config: {origin} ('{item['name']}') needs exactly one test: tier = [...], "
                   "lifecycle = [...], or columns = [...] with contains = [...]")
            raise ConfigError(msg)
        cols = _str_list(f"config: {origin}.columns", item.get("columns", []))
        bad = [c for c in cols if c not in ROLES]
        if bad:
            raise ConfigError(f"config: {origin}.columns names unknown column '{bad[0]}'; use one of {', '.join(ROLES)}")
        out.append(Persona(
            str(item["name"]), str(item.get("zh", item["name"])),
            tier=_str_list(f"config: {origin}.tier", item.get("tier", [])),
            lifecycle=_str_list(f"config: {origin}.lifecycle", item.get("lifecycle", [])),
            columns=cols,
            contains=tuple(s.lower() for s in _str_list(f"config: {origin}.contains", item.get("contains", []))),
        ))
    return tuple(out)


def _actions(items: list[Any]) -> tuple[Action, ...]:
    out = []
    for i, item in enumerate(items):
        origin = f"actions[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"config: {origin} must be a table with tier or persona, en and zh")
        _check_keys(origin, item, {"tier", "persona", "en", "zh"}, set())
        kinds = [k for k in ("tier", "persona") if k in item]
        if len(kinds) != 1 or not isinstance(item[kinds[0]], str):
            raise ConfigError(f"config: {origin} needs exactly one of tier = \"name\" or persona = \"name\"")
        texts = {}
        for lang in ("en", "zh"):
            value = item.get(lang, {})
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(f"config: {origin}.{lang} must be a table of texts, e.g. {{ service = \"...\" }}")
            bad = [k for k in value if k not in ACTION_FIELDS]
            if bad:
                raise ConfigError(f"config: {origin}.{lang} has unknown field '{bad[0]}'; fields: {', '.join(ACTION_FIELDS)}")
            texts[lang] = dict(value)
        out.append(Action(kinds[0], item[kinds[0]], texts["en"], texts["zh"]))
    return tuple(out)


def _tiering(tie: dict[str, Any]) -> tuple[str, tuple[float, ...], float]:
    shares = tie["quantile_shares"]
    ok = (all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in shares)
          and all(0 < a < b <= 1 for a, b in zip(shares, list(shares[1:]) + [1.0])) and bool(shares))
    if not ok:
        raise ConfigError(f"config: tiering.quantile_shares must be ascending shares between 0 and 1, got {shares!r}")
    if not 0.5 <= tie["concentration"] <= 1:
        raise ConfigError(f"config: tiering.concentration is a share between 0.5 and 1, got {tie['concentration']}")
    return tie["scheme"], tuple(float(v) for v in shares), float(tie["concentration"])


# The largest amount a setting may name: what segkit sums exactly (ingest.clean.MONEY_LIMIT_MICRO
# in currency units). A larger tier bound or cut point could never be reached, and 1e300 or inf
# would not fit the Int64 micro-units the amounts are compared in.
MAX_AMOUNT = 9.0e12


def _is_amount(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and -MAX_AMOUNT <= v <= MAX_AMOUNT  # NaN: False


def _thresholds(name: str, value: list[Any]) -> tuple[float, ...]:
    ok = (len(value) == 4 and all(_is_amount(v) for v in value) and all(a < b for a, b in zip(value, value[1:])))
    if not ok:
        msg = (f"config: scoring.{name} must be four ascending numbers of at most {MAX_AMOUNT:,.0f} "
               f"in absolute value, got {value!r}")
        raise ConfigError(msg)
    return tuple(float(v) for v in value)


def parse_date(text: str, what: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(text)
    except ValueError:
        msg = f"{what} must be a date as YYYY-MM-DD, got {text!r}"
        raise bad_value("analysis.as_of", msg) from None
    if not FIRST_YEAR <= date.year <= LAST_YEAR:
        raise bad_value("analysis.as_of", f"{what} must be a date in {FIRST_YEAR}..{LAST_YEAR}, got {text}")
    return date


# (dotted key, low, high): whole-number and numeric settings must lie in these bounds
BOUNDS: tuple[tuple[str, float, float], ...] = (
    ("input.max_bad_rows", 0, 1),
    ("input.max_unpacked_mb", 1, 1_000_000),
    ("input.max_shared_strings", 1, 2**31 - 1),
    ("analysis.year", 0, 2200),
    ("analysis.rfm_window_days", 0, 36500),
    ("clustering.k_min", 2, 50),
    ("clustering.k_max", 2, 50),
    ("clustering.random_state", 0, 2**32 - 1),
    ("clustering.n_init", 10, 1000),
    ("clustering.silhouette_sample", 100, 10_000_000),
    ("clustering.fit_sample", 100, 1_000_000_000),
    ("churn.min_orders", 1, 1000),
)
FIRST_YEAR, LAST_YEAR = 1900, 2200
# input.amount_unit: amounts are held in micro-units, so a smaller unit rounds every amount to 0,
# and a larger one leaves room for sums of a few thousand units only
UNIT_LOW, UNIT_HIGH = 1e-6, 1e9


def bad_value(key: str, msg: str) -> ConfigError:
    """A ConfigError naming the offending key (the CLI names the flag when it came from one)."""
    exc = ConfigError(msg)
    exc.key = key
    return exc


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


def _finite(data: Any, prefix: str = "") -> None:
    """Every number in the config must be finite (TOML allows nan and inf)."""
    import math

    if isinstance(data, dict):
        for k, v in data.items():
            _finite(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _finite(v, f"{prefix}[{i}]")
    elif isinstance(data, float) and not math.isfinite(data):
        raise bad_value(prefix, f"config: {prefix} must be a finite number, got {data}")


def check_values(data: dict[str, Any]) -> None:
    """Range checks that keep every later step inside what it can compute."""
    _finite(data)
    for key, lo, hi in BOUNDS:
        value = _get(data, key)
        if key == "analysis.year" and value != 0:
            lo = FIRST_YEAR
        if not lo <= value <= hi:
            what = "0 (last 365 days) or a year in" if key == "analysis.year" else "in"
            raise bad_value(key, f"config: {key} must be {what} {lo:,}..{hi:,}, got {value}")
    unit = data["input"]["amount_unit"]
    if not UNIT_LOW <= unit <= UNIT_HIGH:
        msg = (f"config: input.amount_unit must lie in {UNIT_LOW:g}..{UNIT_HIGH:,.0f} (1 for amounts in the currency, "
               f"10000 for 万元, 0.01 for cents), got {unit:g}")
        raise bad_value("input.amount_unit", msg)
    clu = data["clustering"]
    if clu["k_min"] > clu["k_max"]:
        raise bad_value("clustering.k_min", f"config: clustering needs 2 <= k_min <= k_max, got {clu['k_min']}..{clu['k_max']}")
    if clu["fit_sample"] < clu["silhouette_sample"]:
        msg = (f"config: clustering.fit_sample ({clu['fit_sample']}) must not be below clustering.silhouette_sample "
               f"({clu['silhouette_sample']}): the final fits use at least the customers the search for k used")
        raise bad_value("clustering.fit_sample", msg)
    if isinstance(clu["k"], int) and not 2 <= clu["k"] <= 50:
        raise bad_value("clustering.k", f"config: clustering.k must be \"auto\" or 2..50, got {clu['k']}")


def build(data: dict[str, Any], sources: dict[str, str] | None = None) -> Config:
    """The Config of merged settings (defaults, file, command line), after checking every value."""
    check_values(data)
    check_choices(data)
    return Config(  # the steps that can fail run in the order their errors are reported
        **_analysis_fields(data["analysis"]),
        **_tiering_fields(data),
        **_input_fields(data["input"], data.get("columns", {})),
        **_scoring_fields(data["scoring"], data["churn"], data["lifecycle"]),
        **_clustering_fields(data["clustering"]),
        **_output_fields(data["output"]),
        actions=_actions(data.get("actions", [])),
        clv=clv_settings(data["clv"]),
        sources=dict(sources or {}),
        effective=data,
    )


def check_choices(data: dict[str, Any]) -> None:
    """Settings that must be one of a few words (``CHOICES``), and the churn thresholds' order."""
    for dotted, allowed in CHOICES.items():
        value = _get(data, dotted)
        if value not in allowed:
            words = ", ".join(f'"{a}"' for a in allowed)
            raise bad_value(dotted, f"config: {dotted} must be one of {words}, got {value!r}")
    bad_reports = [r for r in data["output"]["reports"] if r not in ("xlsx", "html")]
    if bad_reports:
        raise bad_value("output.reports", f"config: output.reports may hold \"xlsx\" and \"html\", got {bad_reports[0]!r}")
    if data["churn"]["medium"] > data["churn"]["high"]:
        raise ConfigError("config: churn.medium must not exceed churn.high")


def clv_settings(clv: dict[str, Any]) -> ClvSettings:
    """The [clv] table, checked (keys and types are checked against the defaults before)."""
    s = ClvSettings(enabled=bool(clv["enabled"]), model=str(clv["model"]),
                    auto_holdout_days=int(clv["auto_holdout_days"]), horizon_days=int(clv["horizon_days"]),
                    annual_discount_rate=float(clv["annual_discount_rate"]),
                    min_repeat_customers=int(clv["min_repeat_customers"]),
                    churn_high=float(clv["churn_high"]), churn_medium=float(clv["churn_medium"]))
    if s.horizon_days < 1:
        raise ConfigError(f"config: clv.horizon_days must be at least 1, got {s.horizon_days}")
    if s.annual_discount_rate < 0:
        raise ConfigError(f"config: clv.annual_discount_rate must not be negative, got {s.annual_discount_rate}")
    if s.auto_holdout_days < 1:
        raise ConfigError(f"config: clv.auto_holdout_days must be at least 1, got {s.auto_holdout_days}")
    if s.min_repeat_customers < 2:
        raise ConfigError(f"config: clv.min_repeat_customers must be at least 2, got {s.min_repeat_customers}")
    if not 0 <= s.churn_high <= s.churn_medium <= 1:
        msg = (f"config: clv needs 0 <= churn_high <= churn_medium <= 1 (p_alive thresholds), "
               f"got {s.churn_high} and {s.churn_medium}")
        raise ConfigError(msg)
    return s


def _input_fields(inp: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    return {
        "input_kind": inp["kind"],
        "encoding": inp["encoding"],
        "sheet": inp["sheet"],
        "date_format": inp["date_format"],
        "amount_unit": float(inp["amount_unit"]),
        "max_bad_rows": float(inp["max_bad_rows"]),
        "max_unpacked_mb": inp["max_unpacked_mb"],
        "max_shared_strings": inp["max_shared_strings"],
        "engine": inp["engine"],
        "spark_master": inp["spark_master"],
        "columns": dict(columns),
        "decimal": inp["decimal"],
    }


def _analysis_fields(ana: dict[str, Any]) -> dict[str, Any]:
    as_of = parse_date(ana["as_of"], "config: analysis.as_of") if ana["as_of"] else None
    return {"as_of": as_of, "year": ana["year"], "rfm_window_days": ana["rfm_window_days"]}


def _scoring_fields(sco: dict[str, Any], chu: dict[str, Any], lif: dict[str, Any]) -> dict[str, Any]:
    return {
        "scoring_method": sco["method"],
        "recency_thresholds": _thresholds("recency", sco["recency"]),
        "frequency_thresholds": _thresholds("frequency", sco["frequency"]),
        "monetary_thresholds": _thresholds("monetary", sco["monetary"]),
        "churn_high": float(chu["high"]),
        "churn_medium": float(chu["medium"]),
        "churn_min_orders": chu["min_orders"],
        "growing": float(lif["growing"]),
        "declining": float(lif["declining"]),
    }


def _clustering_fields(clu: dict[str, Any]) -> dict[str, Any]:
    names = ("k", "k_min", "k_max", "random_state", "n_init", "silhouette_sample", "fit_sample")
    return {**{name: clu[name] for name in names}, "extra_features": tuple(clu["extra_features"])}


def _output_fields(out: dict[str, Any]) -> dict[str, Any]:
    return {"output_dir": out["dir"], "reports": tuple(out["reports"]), "lang": out["lang"],
            "currency": out["currency"].strip().upper()}


def _tiering_fields(data: dict[str, Any]) -> dict[str, Any]:
    tiers, segments, personas = _tiers(data["tiers"]), _segments(data["segments"]), _personas(data["personas"])
    scheme, shares, concentration = _tiering(data["tiering"])
    return {"tier_scheme": scheme, "quantile_shares": shares, "concentration": concentration,
            "tiers": tiers, "segments": segments, "personas": personas}
