"""The human summary on stderr (rich tables); rendering only, from summary.json and the result."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table


def make_console(stderr: bool = True, file=None) -> Console:
    """A console for people: wide enough for the tables when output goes to a file or pipe."""
    import sys

    stream = file or (sys.stderr if stderr else sys.stdout)
    width = None if stream.isatty() else 120
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def print_summary(doc: dict, result, console: Console, out: Path | None) -> None:
    q = doc["data_quality"]
    inp = doc["input"]
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]")
    console.print(
        f"[bold]{doc['customers']:,} customers[/bold] from {q['used_rows']:,} order lines "
        f"(as of {doc['as_of']}; tier window {doc['windows']['tier_start']} .. {doc['windows']['tier_end']})"
    )
    t = Table(title="Tiers (annual spend)", title_justify="left")
    for c, j in (("tier", "left"), ("customers", "right"), ("share", "right"),
                 ("annual spend", "right"), ("share of spend", "right"), ("cumulative", "right")):
        t.add_column(c, justify=j)
    for row in doc["tiers"]:
        t.add_row(f"{row['tier']} {row['zh']}", f"{row['customers']:,}", _pct(row["share_of_customers"]),
                  _money(row["annual_spend"]), _pct(row["share_of_spend"]),
                  _pct(row["cumulative_share_of_spend"]))
    console.print(t)
    s = Table(title="RFM segments", title_justify="left")
    s.add_column("segment")
    s.add_column("customers", justify="right")
    s.add_column("share", justify="right")
    for row in doc["segments"]:
        if row["customers"]:
            s.add_row(f"{row['segment']} {row['zh']}", f"{row['customers']:,}", _pct(row["share"]))
    console.print(s)
    clusters = doc.get("clusters")
    if clusters and clusters.get("k"):
        distinct = (doc.get("validation") or {}).get("distinct")
        kind = "Clusters" if distinct else "Clusters as value bands"
        c = Table(title=f"{kind} (k={clusters['k']}, {clusters.get('k_choice', '')})", title_justify="left")
        stab = ((doc.get("validation") or {}).get("stability") or {}).get("per_cluster")
        for col, j in (("cluster", "right"), ("label", "left"), ("customers", "right"),
                       ("mean recency", "right"), ("mean frequency", "right"), ("mean monetary", "right"),
                       *((("stability", "right"),) if stab else ())):
            c.add_column(col, justify=j)
        for p in clusters["profiles"]:
            c.add_row(str(p["cluster"]), p["label"], f"{p['customers']:,}", f"{p['mean_recency_days']:.0f}",
                      f"{p['mean_frequency']:.1f}", _money(p["mean_monetary"]),
                      *((f"{stab[p['cluster']]:.2f}",) if stab else ()))
        console.print(c)
    elif clusters:
        console.print(f"[yellow]clustering skipped: {clusters.get('skipped_reason')}[/yellow]")
    val = doc.get("validation")
    if val and val.get("verdict"):
        print_validation(val, console)
    print_clv(doc, console)
    mig = doc.get("migration")
    if mig:
        ch = mig["changes"]
        console.print(f"Migration vs {mig['previous']}: up {ch.get('up', 0):,}, down {ch.get('down', 0):,}, "
                      f"same {ch.get('same', 0):,}, new {ch.get('new', 0):,}, lost {mig['lost_customers']:,}")
    dq = (f"Data quality: {inp['rows']:,} data rows, {q['rejected_rows']:,} rejected, "
          f"{q['blank_rows']:,} blank, {q['totals_rows']:,} totals rows removed, "
          f"{q['excluded_after_as_of']:,} after as_of excluded; "
          f"{doc['customers_without_purchase']:,} customers with returns only")
    console.print(dq)
    for reason, n in list(q["rejected_reasons"].items())[:5]:
        console.print(f"  rejected: {reason}: {n:,}")
    if out is not None:
        console.print(f"Outputs in [bold]{out}[/bold]")


def print_validation(val: dict, console: Console) -> None:
    """The verdict (from the null-reference test alone), stability and silhouette with their readings."""
    console.print(f"[bold]Verdict:[/bold] {val['verdict']}")
    stab = val.get("stability")
    if stab:
        console.print(f"Stability (bootstrap Jaccard, {stab['resamples']} resamples): mean {stab['mean']:.2f}; "
                      f">= 0.75 stable, < 0.5 dissolved. {stab['note']}")
    if val.get("silhouette") is not None:
        console.print(f"Silhouette {val['silhouette']:.2f}: {val['silhouette_reading']} (Kaufman & Rousseeuw). "
                      "ANOVA, Kruskal-Wallis and Tukey tables describe how the clusters differ; "
                      "they are not evidence that groups exist.")
    for w in val.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")


def print_inspect(raw, cleaned, cfg, console: Console) -> None:
    q = cleaned.quality
    for note in raw.notes:
        console.print(note)
    m = Table(title="Column mapping", title_justify="left")
    m.add_column("role")
    m.add_column("column in file")
    for role, header in raw.mapping.items():
        m.add_row(role, header)
    console.print(m)
    unmapped = [h for h in raw.headers if h not in raw.mapping.values()]
    if unmapped:
        console.print(f"not used: {', '.join(unmapped)}")
    console.print(
        f"rows: {q['rows_read']:,} read, {q['data_rows']:,} data rows, {q['blank_rows']:,} blank, "
        f"{q['totals_rows']:,} totals, {q['rejected_rows']:,} rejected ({q['rejected_share']:.1%}; "
        f"limit {cfg.max_bad_rows:.0%}), {q['used_rows']:,} usable"
    )
    lines = cleaned.lines
    if lines.height:
        console.print(f"dates: {lines['order_date'].min()} .. {lines['order_date'].max()}; "
                      f"customers: {lines['customer_id'].n_unique():,}")
        amounts = (lines["amount"] / 1e6)  # one value per customer, order and date
        qs = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]
        a = Table(title="Amount per order (net, per customer and date)", title_justify="left")
        for qn in qs:
            a.add_column({0.0: "min", 1.0: "max"}.get(qn, f"p{int(qn * 100)}"), justify="right")
        a.add_row(*[_money(amounts.quantile(qn, "nearest")) for qn in qs])
        console.print(a)
        neg = lines.filter(pl.col("amount") < 0).height
        console.print(f"orders with a negative net amount (returns/credit notes): {neg:,}; "
                      f"total amount {_money(amounts.sum())}")
    if q["rejected_reasons"]:
        r = Table(title="Rejected rows", title_justify="left")
        r.add_column("reason")
        r.add_column("rows", justify="right")
        r.add_column("first rows")
        for reason, n in q["rejected_reasons"].items():
            rows = cleaned.rejected.filter(pl.col("reason") == reason)["row"].head(5).to_list()
            r.add_row(reason, f"{n:,}", ", ".join(map(str, rows)))
        console.print(r)


def print_clv(doc: dict, console: Console) -> None:
    """One or two lines on the CLV model: fitted parameters or why it was skipped."""
    c = doc.get("clv")
    if not c:
        return
    if c.get("skipped_reason"):
        console.print(f"[yellow]CLV skipped:[/yellow] {c['skipped_reason']}")
        return
    bg = c["params"]["bgnbd"]
    console.print(f"CLV ({' + '.join(c['models'])}, {c['customers_fitted']:,} customers, next {c['horizon_days']} days)")
    ab = ("no dropout found (a/(a+b) ~ 0)" if c.get("no_dropout") else f"a={bg['a']:.3g} b={bg['b']:.3g}")
    line = f"  BG/NBD r={bg['r']:.3g} alpha={bg['alpha']:.3g} {ab}"
    gg = c["params"].get("gamma_gamma")
    if gg:
        line += f"; Gamma-Gamma p={gg['p']:.3g} q={gg['q']:.3g} v={gg['v']:.3g}"
    console.print(line)
    console.print(f"[dim]churn_risk rule: {c['churn_rule']}[/dim]")


def print_backtest(doc: dict, console: Console) -> None:
    console.print(f"[bold]CLV backtest[/bold]: fitted on purchases before {doc['calibration_end']}, "
                  f"scored on the {doc['holdout_days']} days to {doc['as_of']}")
    if doc.get("skipped_reason"):
        console.print(f"[yellow]not possible:[/yellow] {doc['skipped_reason']}")
        return
    tot = doc["totals"]
    console.print(f"{doc['customers']:,} customers; purchase days in the holdout: predicted "
                  f"{tot['predicted_purchases']:,.0f}, actual {tot['actual_purchases']:,}, "
                  f"naive (same rate as before) {tot['naive_purchases']:,.0f}")
    console.print(f"mean absolute error per customer: {doc['mae_per_customer']:.3f} "
                  f"(naive {doc['naive_mae_per_customer']:.3f}); {doc['new_in_holdout']:,} customers "
                  "first bought in the holdout and are not scored")
    if "predicted_revenue" in tot:
        console.print(f"revenue in the holdout: predicted {tot['predicted_revenue']:,.2f}, "
                      f"actual {tot['actual_revenue']:,.2f}")
    t = Table(title="Calibration by repeat purchases before the holdout", title_justify="left")
    for col in ("repeat purchases", "customers", "predicted mean", "actual mean", "naive mean"):
        t.add_column(col, justify="right")
    for row in doc["calibration_table"]:
        t.add_row(str(row["repeat_purchases"]), f"{row['customers']:,}", f"{row['predicted_mean']:.2f}",
                  f"{row['actual_mean']:.2f}", f"{row['naive_mean']:.2f}")
    console.print(t)
