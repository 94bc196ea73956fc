"""The human summary on stderr (rich tables); rendering only, from summary.json and the result."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, cast

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from segkit.ingest.clean import MICRO
from segkit.outputs.safetext import markup_safe as esc
from segkit.outputs.safetext import plain

if TYPE_CHECKING:
    from segkit.ingest.clean import Cleaned
    from segkit.config import Config
    from segkit.ingest.read import RawTable
    from segkit.result import Segmentation
    from segkit.outputs.report.labels import Names

    from rich.console import JustifyMethod


def console_width(stream: IO[str]) -> int | None:
    """``COLUMNS`` when set; the terminal's own width on a TTY; else wide enough never to wrap."""
    import os

    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    return None if stream.isatty() else 10_000



def make_console(stderr: bool = True, file: IO[str] | None = None) -> Console:
    """A console for people; off a terminal lines are never wrapped (pipes and files stay parseable)."""
    import sys

    stream = file or (sys.stderr if stderr else sys.stdout)
    return Console(file=stream, highlight=False, soft_wrap=False, width=console_width(stream))


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _name(en: str, zh: str | None, lang: str) -> str:
    """One display name: the report language's, with the other added only when it differs."""
    zh = zh or en
    if lang == "zh":
        return zh
    return en if zh == en else f"{en} {zh}"


def _flags(text: str) -> str:
    """A note with each setting it names (``errors.option``) shown as its command-line flag."""
    from segkit.cli.flags import flag
    from segkit.errors import render

    return render(text, flag)


def print_summary(result: Segmentation, console: Console, out: Path | None) -> None:
    """The run in a screenful: headline, tiers, RFM segments, clusters, validation, CLV, migration,
    data quality and warnings (a view of the result's summary document, as summary.json is)."""
    from segkit.outputs.report.labels import Names, ui

    doc = result.document
    lang = result.config.lang
    t = ui(lang)
    from segkit.outputs.report.labels import note_text

    for note in result.notes:
        console.print(f"[dim]{esc(note_text(_flags(note), lang))}[/dim]")
    _print_headline(doc, console, t)
    _print_tiers(doc, console, t, lang)
    _print_segments(doc, console, t, lang)
    _print_clusters(doc, console, t, Names(result.config, lang, result.tiers))
    val = doc.get("validation")
    if val and val.get("verdict_text"):
        print_validation(val, console, lang)
    print_clv(doc, console, lang)
    backtest = (doc.get("clv") or {}).get("backtest")
    if backtest:
        print_backtest(backtest, console, lang)
    _print_migration(doc, console, t)
    _print_quality(doc, console, t, lang)
    if out is not None:
        console.print(t["term_outputs"].format(out=plain(out)), markup=False)


def _print_headline(doc: dict[str, Any], console: Console, t: dict[str, Any]) -> None:
    cov = doc.get("coverage") or {}
    covered = f"{cov['first_date']} .. {cov['last_date']}" if cov.get("first_date") else t["not_available"]
    win, rows = doc.get("windows"), doc["data_quality"]["used_rows"]
    if win is None:
        console.print(t["term_headline_undated"].format(customers=doc["customers"], rows=rows), markup=False)
    else:
        console.print(t["term_headline"].format(customers=doc["customers"], rows=rows, as_of=doc["as_of"],
                                                start=win["tier_start"], end=win["tier_end"]), markup=False)
    console.print(f"{t['covered_range']}{t['colon']}{covered} · {t['currency']}{t['colon']}"
                  f"{plain(doc.get('currency') or t['currency_unknown'])}",
                  markup=False)


def _print_tiers(doc: dict[str, Any], console: Console, t: dict[str, Any], lang: str) -> None:
    unit = f" ({esc(doc['currency'])})" if doc.get("currency") else ""
    tb = Table(title=t["term_tiers"], title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        (t["tier"], "left"), (t["customers"], "right"), (t["share"], "right"),
        (t["annual_spend"] + unit, "right"), (t["share_of_spend"], "right"), (t["cumulative"], "right"))
    profit = {r["tier"]: r for r in doc["profit"]["tiers"]} if "profit" in doc else None
    if profit is not None:
        columns += ((t["gross_profit"] + unit, "right"), (t["share_of_profit"], "right"))
    for c, j in columns:
        tb.add_column(c, justify=j)
    for row in doc["tiers"]:
        extra = [] if profit is None else [_money(profit[row["tier"]]["gross_profit"]),
                                           _pct(profit[row["tier"]]["share_of_profit"])]
        tb.add_row(_name(row["tier"], row.get("zh"), lang), f"{row['customers']:,}", _pct(row["share_of_customers"]),
                   _money(row["annual_spend"]), _pct(row["share_of_spend"]), _pct(row["cumulative_share_of_spend"]),
                   *extra)
    console.print(tb)
    if "profit" in doc:
        from segkit.outputs.report.profit_section import headline

        p = doc["profit"]
        console.print(t["term_profit"].format(total=_money(p["gross_profit"]), margin=_pct(p["margin"]),
                                              headline=headline(doc, t)), markup=False)


def _print_segments(doc: dict[str, Any], console: Console, t: dict[str, Any], lang: str) -> None:
    tb = Table(title=t["rfm"], title_justify="left")
    tb.add_column(t["segment"])
    tb.add_column(t["customers"], justify="right")
    tb.add_column(t["share"], justify="right")
    for row in doc["segments"]:
        if row["customers"]:
            tb.add_row(_name(row["segment"], row.get("zh"), lang), f"{row['customers']:,}", _pct(row["share"]))
    if tb.row_count:
        console.print(tb)


def _print_migration(doc: dict[str, Any], console: Console, t: dict[str, Any]) -> None:
    mig = doc.get("migration")
    if mig:
        ch = mig["changes"]
        console.print(t["term_migration"].format(previous=plain(mig["previous"]), up=ch.get("up", 0), down=ch.get("down", 0),
                                                 same=ch.get("same", 0), new=ch.get("new", 0),
                                                 lost=mig["lost_customers"]), markup=False)


def _print_quality(doc: dict[str, Any], console: Console, t: dict[str, Any], lang: str) -> None:
    q, inp = doc["data_quality"], doc["input"]
    console.print(t["term_quality"].format(
        rows=inp["rows"], rejected=q["rejected_rows"], blank=q["blank_rows"], totals=q["totals_rows"],
        after=q["excluded_after_as_of"], no_purchase=doc["customers_without_purchase"],
        returns=doc.get("customers_returns_only", 0), zero=doc.get("customers_zero_amount_only", 0)), markup=False)
    from segkit.outputs.report.labels import reason_text

    for reason, n in list(q["rejected_reasons"].items())[:5]:
        console.print(f"  {t['rejected_rows']}{t['colon']}{plain(reason_text(reason, lang))}{t['colon']}{n:,}",
                      markup=False)
    for w in doc.get("warnings", []):
        text = w.get("message_zh") if lang == "zh" and w.get("message_zh") else w["message"]
        console.print(Text(f"{t['warning']}{t['colon']}", style="yellow") + Text(f"[{w['code']}] {plain(text)}"))


def _print_clusters(doc: dict[str, Any], console: Console, t: dict[str, Any], names: Names) -> None:
    clusters = doc.get("clusters")
    if clusters and clusters.get("k"):
        val = doc.get("validation") or {}
        kind = t["clusters"] if val.get("distinct") else t["clusters_as_bands"]
        choice = (clusters.get("k_choice_zh") if names.zh else None) or clusters.get("k_choice", "")
        k = f"（k={clusters['k']}，{choice}）" if names.zh else f" (k={clusters['k']}, {choice})"
        c = Table(title=f"{kind}{k}", title_justify="left")
        stab = (val.get("stability") or {}).get("per_cluster")
        for col, j in ((t["cluster"], "right"), (t["label"], "left"), (t["customers"], "right"),
                       (t["mean_recency_days"], "right"), (t["mean_frequency"], "right"), (t["mean_monetary"], "right"),
                       *(((t["jaccard"], "right"),) if stab else ())):
            c.add_column(col, justify=j)
        for p in clusters["profiles"]:
            c.add_row(str(p["cluster"]), names.cluster(p), f"{p['customers']:,}", _num(p["mean_recency_days"]),
                      _num(p["mean_frequency"], 1), _money(p["mean_monetary"]),
                      *((f"{stab[p['cluster']]:.2f}",) if stab else ()))
        console.print(c)
    elif clusters:
        console.print(Text(f"{t['clustering_skipped']}{t['colon']}", style="yellow") + Text(str(clusters.get("skipped_reason"))))


def print_validation(val: dict[str, Any], console: Console, lang: str = "en") -> None:
    """The verdict (from the null-reference test alone), stability and silhouette with their readings.
    (Validation's notes are among the run's warnings and are printed with them.)"""
    from segkit.outputs.report.labels import ui

    t = ui(lang)
    zh = lang == "zh"
    verdict = (val.get("verdict_zh") if zh else None) or val["verdict_text"]
    console.print(Text(f"{t['verdict']}{t['colon']}", style="bold") + Text(verdict))
    stab = val.get("stability")
    if stab:
        note = (stab.get("note_zh") if zh else None) or stab["note"]
        console.print(t["term_stability"].format(resamples=stab["resamples"], mean=stab["mean"], note=note),
                      markup=False)
    if val.get("silhouette") is not None:
        reading = (val.get("silhouette_reading_zh") if zh else None) or val["silhouette_reading"]
        console.print(t["term_silhouette"].format(value=val["silhouette"], reading=reading), markup=False)
    _print_chi2(val.get("chi2") or {}, console, lang)


def _print_chi2(chi2: dict[str, Any], console: Console, lang: str) -> None:
    """Cluster × each attribute not used to build the clusters (channel, region, ...): the one
    test of the clusters that is not circular, with its effect size."""
    from segkit.outputs.report.labels import ui
    from segkit.i18n import message

    t = ui(lang)
    for column, c in chi2.items():
        if isinstance(c, dict) and c.get("p") is not None:
            name = message("variable", column, lang) if column in ("channel", "region", "customer_type") else column
            console.print(t["term_chi2"].format(column=name, chi2=c["chi2"], dof=c["dof"], p=c["p"],
                                                v=c.get("cramers_v") or 0.0), markup=False)


def print_inspect(raw: RawTable, cleaned: Cleaned, cfg: Config, console: Console) -> None:
    q = cleaned.quality
    for note in raw.notes:
        console.print(esc(_flags(note)))
    m = Table(title="Column mapping", title_justify="left")
    m.add_column("role")
    m.add_column("column in file")
    for role, header in raw.mapping.items():
        m.add_row(role, esc(header))
    console.print(m)
    unmapped = [h for h in raw.headers if h not in raw.mapping.values()]
    if unmapped:
        console.print(f"not used: {esc(', '.join(unmapped))}")
    console.print(
        f"rows: {q['rows_read']:,} read, {q['data_rows']:,} data rows, {q['blank_rows']:,} blank, "
        f"{q['totals_rows']:,} totals, {q['rejected_rows']:,} rejected ({q['rejected_share']:.1%}; "
        f"limit {cfg.max_bad_rows:.0%}), {q['used_rows']:,} usable"
    )
    lines = cleaned.lines
    if lines.height:
        console.print(f"dates: {lines['order_date'].min()!s} .. {lines['order_date'].max()!s}; "
                      f"customers: {lines['customer_id'].n_unique():,}")
        amounts = (lines["amount"] / MICRO)  # one value per customer, order and date
        qs = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]
        a = Table(title="Amount per order (net, per customer and date)", title_justify="left")
        for qn in qs:
            a.add_column({0.0: "min", 1.0: "max"}.get(qn, f"p{int(qn * 100)}"), justify="right")
        a.add_row(*[_money(amounts.quantile(qn, "nearest")) for qn in qs])
        console.print(a)
        neg = lines.filter(pl.col("amount") < 0).height
        console.print(f"orders with a negative net amount (returns/credit notes): {neg:,}; "
                      f"total amount {_money(cast(float, amounts.sum()))}")
    if q["rejected_reasons"]:
        r = Table(title="Rejected rows", title_justify="left")
        r.add_column("reason")
        r.add_column("rows", justify="right")
        r.add_column("first rows")
        for reason, n in q["rejected_reasons"].items():
            rows = cleaned.rejected.filter(pl.col("reason") == reason)["row"].head(5).to_list()
            r.add_row(esc(reason), f"{n:,}", ", ".join(map(str, rows)))
        console.print(r)


def print_clv(doc: dict[str, Any], console: Console, lang: str = "en") -> None:
    """One or two lines on the CLV model: fitted parameters or why it was skipped."""
    from segkit.outputs.report.labels import ui

    t = ui(lang)
    c = doc.get("clv")
    if not c:
        return
    if c.get("skipped_reason"):
        if not any(w["code"] == "clv_skipped" for w in doc.get("warnings", [])):  # else the warning says it
            console.print(Text(f"{t['term_clv_skipped']}{t['colon']}", style="yellow") + Text(c["skipped_reason"]))
        return
    from segkit.models.clv.registry import DEFAULT, get

    spec = get(c.get("model") or DEFAULT)
    pm = c["params"][spec.name]
    gg = c["params"].get("gamma_gamma")
    models = [spec.label, *(["Gamma-Gamma"] if gg else [])]
    console.print(t["term_clv"].format(models=" + ".join(models), customers=c["customers_fitted"],
                                       days=c["horizon_days"]), markup=False)
    shape = " ".join(f"{k}={pm[k]:.3g}" for k in spec.param_names[2:])
    line = f"  {spec.label} r={pm['r']:.3g} alpha={pm['alpha']:.3g} {t['term_clv_no_dropout'] if c.get('no_dropout') else shape}"
    if gg:
        line += ("；" if lang == "zh" else "; ") + f"Gamma-Gamma p={gg['p']:.3g} q={gg['q']:.3g} v={gg['v']:.3g}"
    console.print(line)
    from segkit.models.clv.run import churn_rule_text

    rule = churn_rule_text(c["churn_rule_code"], lang) if c.get("churn_rule_code") else c.get("churn_rule", "")
    console.print(Text(f"{t['term_clv_churn_rule']}{t['colon']}{rule}", style="dim"))
    if c.get("selection"):
        console.print(Text(f"{t['term_clv_selection']}{t['colon']}{c['selection']['reason']}", style="dim"))


def _print_backtest_outlook(o: dict[str, Any] | None, console: Console, t: dict[str, Any]) -> None:
    if o is None:
        return
    if "skipped_reason" in o:
        console.print(t["term_backtest_outlook_skipped"], markup=False)
        return
    console.print(t["term_backtest_outlook"].format(
        moved=o["moved_as_predicted"], movers=o["predicted_to_move"], reached=o["reached_predicted_tier"],
        actual=o["actually_moved"], model=o["model_tier_right"], n=o["customers"], naive=o["naive_tier_right"]),
        markup=False)


def print_backtest(doc: dict[str, Any], console: Console, lang: str = "en") -> None:
    """The backtest's figures: totals, error against the naive rule, calibration by repeat purchases."""
    from segkit.outputs.report.labels import ui

    t = ui(lang)
    console.print(Text(t["term_backtest"].format(end=doc["calibration_end"], days=doc["holdout_days"],
                                                 as_of=doc["as_of"]), style="bold"))
    if doc.get("skipped_reason"):
        console.print(Text(f"{t['term_backtest_skipped']}{t['colon']}", style="yellow") + Text(plain(doc["skipped_reason"])))
        return
    tot = doc["totals"]
    console.print(t["term_backtest_totals"].format(customers=doc["customers"], pred=tot["predicted_purchases"],
                                                   act=tot["actual_purchases"], naive=tot["naive_purchases"]),
                  markup=False)
    better = doc["mae_per_customer"] <= doc["naive_mae_per_customer"]
    console.print(t["term_backtest_mae"].format(
        mae=doc["mae_per_customer"], naive=doc["naive_mae_per_customer"], new=doc["new_in_holdout"],
        verdict=t["term_backtest_better" if better else "term_backtest_worse"]), markup=False)
    if "predicted_revenue" in tot:
        console.print(t["term_backtest_revenue"].format(pred=tot["predicted_revenue"], act=tot["actual_revenue"]),
                      markup=False)
    _print_backtest_outlook(doc.get("outlook"), console, t)
    tb = Table(title=t["term_backtest_calibration"], title_justify="left")
    for key in ("bt_repeat", "bt_customers", "bt_predicted", "bt_actual", "bt_naive"):
        tb.add_column(t[key], justify="right")
    for row in doc["calibration_table"]:
        tb.add_row(str(row["repeat_purchases"]), f"{row['customers']:,}", f"{row['predicted_mean']:.2f}",
                   f"{row['actual_mean']:.2f}", f"{row['naive_mean']:.2f}")
    console.print(tb)
