"""run(): read -> clean -> customer table -> clustering -> CLV -> validation, as one result.

Orchestration only: each step lives in its stage's package and returns a new value; nothing edits
what an earlier step returned. The result is a frozen ``segkit.result.Segmentation``; a later step
(migration against an earlier run) derives a new one with ``dataclasses.replace``.
``progress`` is an optional callback ``progress(step: str)`` called as each step starts; the
library never prints.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segkit.config import Config
from segkit.customers import date_coverage as coverage
from segkit.customers.currency import detect_currency
from segkit.customers.metrics import CustomerTable, finish
from segkit.customers.tiers import Tiering, resolve as resolve_tiers, tier_guidance
from segkit.engines.contract import Reduced
from segkit.engines.polars import reduce_lines
from segkit.errors import DataError
from segkit.ingest.clean import Cleaned
from segkit.ingest.read import RawTable, read_input
from segkit.ingest.sources import limits_for
from segkit.result import Segmentation

if TYPE_CHECKING:
    from segkit.models.clv.run import ClvResult
    from segkit.models.nulls import EarlyNull

Progress = Callable[[str], None]


def run(
    input_path: str,
    cfg: Config,
    *,
    progress: Progress | None = None,
    stdin: io.BufferedIOBase | None = None,
    cluster: bool = True,
    backtest_days: int | None = None,
) -> Segmentation:
    step = progress or (lambda _s: None)
    step("read")
    days = bool(backtest_days) or (cfg.clv.enabled and cfg.clv.model == "auto")
    result = _customers(input_path, cfg, step, stdin, preload=cluster, days=days)
    if cluster:
        return add_models(result, step, backtest_days)
    step("clv")
    return add_clv(result, backtest_days)


def add_models(result: Segmentation, step: Progress, holdout_days: int | None = None) -> Segmentation:
    """``add_clusters``, ``add_clv`` and ``add_validation`` in turn, the nulls' tests run early:
    the copula null reads only the clustering features, so it runs beside k-means, and the
    buy-till-you-die null runs as soon as the CLV fit it draws from is done, also beside k-means
    (numpy, scipy and polars release the GIL in their array work; each step has its own seeds).

    BLAS runs on one thread throughout: a BLAS call made while another thread's call runs may get
    fewer threads, and a matrix product summed in another order can differ in the last bit, which
    would make the output depend on timing."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from segkit.models.cluster_validation import null_plan

    plan = null_plan(result.customers, result.config, result.cluster_features)
    as_of = result.table.windows.as_of if result.table.windows else None
    clv_done: Future[ClvResult | None] = Future()

    def clv_then_btyd() -> EarlyNull | None:
        try:
            clv = clv_fit(result, holdout_days)
        except BaseException as exc:  # the main thread raises it from clv_done.result()
            clv_done.set_exception(exc)
            raise
        clv_done.set_result(clv)
        return plan.btyd(result.customers, clv, as_of) if plan else None

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=2) as pool:
        btyd = pool.submit(clv_then_btyd)
        copula = pool.submit(plan.copula) if plan else None
        clustered = add_clusters(result, step)
        step("clv")
        with_clv = attach_clv(clustered, clv_done.result())
        early = lambda: tuple(e for e in (copula.result() if copula else None, btyd.result()) if e)  # noqa: E731
        return add_validation(with_clv, step, early)


def _customers(input_path: str, cfg: Config, step: Progress, stdin: io.BufferedIOBase | None,
               *, preload: bool, days: bool = False) -> Segmentation:
    """The read-to-customer-table part, for each engine and input kind. ``days``: keep each
    customer's net per day (CLV model selection, backtest)."""
    if cfg.engine == "spark" and cfg.input_kind != "customers":
        try:
            reduced = _spark_reduced(input_path, cfg, step, days)
        except DataError as exc:  # a customer-level table is small: read as the polars engine does
            return _as_customer_table(input_path, cfg, stdin, exc)
        step("customers")
        return _orders(reduced, cfg)
    if cfg.input_kind == "customers":
        from segkit.ingest.customer_table import run_customers

        return run_customers(input_path, cfg, stdin=stdin)
    try:
        raw = read_input(input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin,
                         limits=limits_for(cfg), background=True)
    except DataError as exc:
        return _as_customer_table(input_path, cfg, stdin, exc)
    step("clean")
    from segkit.engines.polars import order_lines

    # The clustering stack (~1 s of imports) loads in a thread while polars works. For a large
    # file it waits for the read to end: the read's group-by is the run's memory peak and the
    # modules' ~100 MB would add to it. A small file has the headroom, and its read hides the imports.
    early = preload and raw.size < PRELOAD_DURING_READ_BELOW
    loader = _Preload("segkit.models.kmeans", "segkit.models.cluster_validation") if early else None
    raw, cleaned = order_lines(raw, cfg, lambda: read_input(
        input_path, encoding=cfg.encoding, sheet=cfg.sheet, mapping=cfg.columns, stdin=stdin,
        limits=limits_for(cfg)))
    if preload and not early:
        loader = _Preload("segkit.models.kmeans", "segkit.models.cluster_validation")
    step("customers")
    result = _orders(reduce_lines(raw, cleaned, cfg, days=days), cfg)
    if loader is not None:
        loader.join()
    return result


def add_clusters(result: Segmentation, step: Progress) -> Segmentation:
    """k-means on the customer table (auto-k by silhouette): a new result with the clusters."""
    from segkit.models.kmeans import cluster_customers

    step("cluster")
    clusters = cluster_customers(result.customers, result.config, result.cluster_features)
    return result.with_customers(clusters.customers, clusters=clusters)


def add_validation(result: Segmentation, step: Progress,
                   early: Callable[[], tuple[EarlyNull, ...]] = tuple) -> Segmentation:
    """The nulls (the buy-till-you-die one reads the CLV fit, so this runs after ``add_clv``),
    stability and the descriptive statistics. When every null rejects at a k other than the
    silhouette's, the customers are clustered again at the nulls' k (SPEC §4: "k distinct groups"
    names a k the nulls support). The nulls run in a thread while stability and the descriptive
    statistics are computed; ``early``: waits for the null tests run beforehand (``add_models``)."""
    from concurrent.futures import ThreadPoolExecutor

    from segkit.models.cluster_validation import btyd_inputs, evidence_for, validate
    from segkit.models.kmeans import cluster_customers, k_choice_by_nulls

    first = clusters = result.clusters
    assert clusters is not None
    step("validate")
    if clusters.labels is None:
        return dataclasses.replace(result, validation=validate(clusters, result.config))
    as_of = result.table.windows.as_of if result.table.windows else None
    btyd = btyd_inputs(clusters, result.customers, result.clv, as_of)
    roles = result.cleaned.roles
    with ThreadPoolExecutor(max_workers=1) as pool:
        tested = clusters
        pending = pool.submit(lambda: evidence_for(tested, result.config, btyd, early()))
        validation = validate(clusters, result.config, roles, pending.result)
    evidence = validation.evidence
    assert evidence is not None
    if evidence.verdict.code == "distinct" and evidence.choice.k != clusters.k:
        cfg = dataclasses.replace(result.config, k=evidence.choice.k)
        clusters = k_choice_by_nulls(cluster_customers(result.customers, cfg, result.cluster_features),
                                     result.config, clusters)
        validation = validate(clusters, result.config, roles, evidence)
    customers = result.customers if clusters is first else clusters.customers
    return result.with_customers(customers, clusters=clusters, validation=validation)


def _as_customer_table(input_path: str, cfg: Config, stdin: io.BufferedIOBase | None,
                       exc: DataError) -> Segmentation:
    """An order export that failed to read may be a customer-level table (``input.kind = auto``):
    read it as one when it looks like one, else raise the reader's error. A pipe cannot be read
    twice, so only a regular file is tried again."""
    from segkit.ingest.customer_table import looks_like_customer_table, run_customers, unrecognised

    streamed = input_path == "-" or not Path(input_path).is_file()
    if cfg.input_kind != "auto" or streamed or not looks_like_customer_table(input_path, cfg, exc):
        raise exc
    unknown = unrecognised(input_path, cfg)
    if unknown:
        raise DataError(unknown) from None
    try:
        return run_customers(input_path, cfg, stdin=stdin, detected=True)
    except DataError:
        raise exc from None


PRELOAD_DURING_READ_BELOW = 256 * 2**20  # bytes of input


class _Preload(threading.Thread):
    """Import the clustering stack (scikit-learn, scipy: about a second of pure Python) in a
    thread while the engine reads the input, which runs in polars without holding the GIL."""

    def __init__(self, *modules: str) -> None:
        super().__init__(daemon=True)
        self.modules = modules
        self.start()

    def run(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except ImportError:
                return  # the step that needs the module imports it again and reports the error


def add_clv(result: Segmentation, holdout_days: int | None = None) -> Segmentation:
    """The counting model (clv.model; ``auto`` chooses on a holdout of the cleaned lines, see
    models/clv/select.py) + Gamma-Gamma; CLV columns after churn_risk (SPEC §3, §5)."""
    return attach_clv(result, clv_fit(result, holdout_days))


def clv_fit(result: Segmentation, holdout_days: int | None = None) -> ClvResult | None:
    """The CLV fit of ``result``'s customer table (and the backtest over ``holdout_days``); None
    for a customer-level table, which has no purchase history."""
    from segkit.models.clv.run import run_clv

    if result.input_kind == "customers":
        if holdout_days:
            raise DataError(f"{result.raw.source}: a backtest needs order lines; a customer-level table has none")
        return None
    win = result.table.windows
    assert win is not None  # order lines always have dates
    s = result.config.clv
    model, selection = None, None
    if s.enabled and s.model == "auto":
        from segkit.models.clv.select import select_from_lines

        model, selection = select_from_lines(_days(result), win.as_of, s)
    clv = run_clv(result.table.customers, win.as_of, s, model, result.config.fit_sample)
    if selection is not None:
        clv = dataclasses.replace(clv, selection=selection)
    if holdout_days:
        from segkit.models.backtest import backtest

        clv = dataclasses.replace(clv, backtest=backtest(_days(result), win.as_of, holdout_days,
                                                         result.config.clv, result.tiers))
    return clv


def attach_clv(result: Segmentation, clv: ClvResult | None) -> Segmentation:
    """A new result with the CLV columns after churn_risk and the predicted tier; without a fit
    (a customer-level table: the customer_input and clv_skipped warnings say why) they stay empty."""
    from segkit.models.clv.run import CLV_COLUMNS, attach
    from segkit.models.outlook import with_predicted_tier

    if clv is None:
        df = result.customers
        cols = [c for c in df.columns if c not in CLV_COLUMNS]
        at = cols.index("churn_risk") + 1
        df = df.with_columns([pl.lit(None, pl.Float64).alias(c) for c in CLV_COLUMNS])
        df = df.select([*cols[:at], *CLV_COLUMNS, *cols[at:]])
        return result.with_customers(with_predicted_tier(df, result.tiers, result.config.clv.horizon_days))
    df = with_predicted_tier(attach(result.customers, clv), result.tiers, clv.settings.horizon_days)
    return result.with_customers(df, clv=clv)


def _days(result: Segmentation) -> pl.DataFrame:
    """Each customer's net per day, which ``run`` keeps when CLV selection or a backtest reads it."""
    if result.days is None:
        raise ValueError("this result kept no purchase days: run the pipeline with backtest_days or clv.model auto")
    return result.days


def _spark_reduced(input_path: str, cfg: Config, step: Progress, days: bool) -> Reduced:
    """The spark engine reads and checks every row and reduces them where the data is; the
    polars steps after that are the same for both engines."""
    from segkit.engines.spark import get_session, reduce

    step("session")
    session = get_session(cfg.spark_master or None)
    step("spark")
    return reduce(input_path, cfg, session=session, days=days)


def customer_steps(lines: pl.DataFrame, cfg: Config, roles: tuple[str, ...] = (),
                   source: str = "input") -> tuple[CustomerTable, Tiering, dict[str, Any]]:
    """Order lines -> the customer table, the tiering it used and the date coverage."""

    raw = RawTable(source, pl.LazyFrame(), [], {}, "csv", 1, 0, "")
    reduced = reduce_lines(raw, Cleaned(lines, pl.DataFrame(), {}, roles), cfg)
    return _tables(reduced, cfg)


def build_customers(lines: pl.DataFrame, cfg: Config, roles: tuple[str, ...] = (),
                    source: str = "input") -> CustomerTable:
    """Order lines -> the customer table (``customer_steps`` without the rest)."""
    return customer_steps(lines, cfg, roles, source)[0]


def _tables(reduced: Reduced, cfg: Config) -> tuple[CustomerTable, Tiering, dict[str, Any]]:
    """The customer table, the tiering it used and the date coverage, from the engine's aggregates."""
    facts, roles = reduced.facts, reduced.cleaned.roles
    cov = coverage.assess(facts.dates, facts.windows, cfg)
    tiering = resolve_tiers(cfg, reduced.base["annual"], reduced.activity)
    table = finish(reduced.base, cfg, facts.windows, tiering, cov["yoy_available"], roles,
                   facts.excluded_after_as_of, reduced.population_median_gap)
    return table, tiering, cov


def _orders(reduced: Reduced, cfg: Config) -> Segmentation:
    """Customer table of an order-line input, each step once and in order (the engine has checked
    the dates and built the base table): date coverage, the tier scheme, the labels (``finish``),
    then currency and the tier guidance."""
    raw, facts = reduced.raw, reduced.facts
    table, tiering, cov = _tables(reduced, cfg)
    currency, source = detect_currency(raw, cfg)
    tiering, guidance = tier_guidance(table.customers, tiering, cfg, cov, currency)
    return Segmentation(cfg, raw, reduced.cleaned, table, notes=tuple(raw.notes), coverage=cov, tiering=tiering,
                        currency=currency, currency_source=source,
                        warnings=(*raw.warnings, *facts.warnings, *guidance),
                        excluded_implausible_dates=facts.implausible, days=reduced.days)
