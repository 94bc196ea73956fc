"""The report context: everything report.xlsx and report.html show, as plain JSON-safe data.

``build_context(result, doc)`` is the only place where the reports compute anything: it reads the
summary.json document (``doc``), adds the few aggregates the summary does not hold (R×F heat
table, tier cross-tabs, top-N customer lists), translates codes into display names in the report
language, and lays out the SVG charts (``svg.py``). The writers only render it.

The one exception to "plain data" is the Customers sheet: every row of the assignments goes to the
workbook straight from the polars frame (``result.assignments``), because 100,000 customers as
Python dicts would cost more than writing them. The context describes its columns
(``customers_table``: name, kind, width) so the writer needs no decisions of its own.
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import polars as pl

from segkit.customers.metrics import LIFECYCLES
from segkit.customers.migration import movers_of
from segkit.ingest.clean import MICRO
from segkit.outputs.staging import to_jsonable
from segkit.outputs.report.outlook_section import outlook_section
from segkit.outputs.report.profit_section import profit_section
from segkit.outputs.report import svg
from segkit.outputs.report.clv_section import churn_warnings, clv_section
from segkit.outputs.report.labels import QUALITY_KEYS, Names, ui

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from segkit.models.clv.run import ClvResult
    from segkit.config import Config
    from segkit.result import Segmentation

TOP_N = 50
SCORES_DESC = (5, 4, 3, 2, 1)
SCORES_ASC = (1, 2, 3, 4, 5)
CHANGES = ("up", "down", "same", "new")
MONEY_COLUMNS = {"monetary", "annual_spend", "prior_annual_spend", "previous_annual_spend", "gross_profit"}
SHARE_COLUMNS = {"yoy_growth", "margin"}
CODE_COLUMNS = {"r_score", "f_score", "m_score", "cluster"}
TIER_LIST_COLUMNS = ("customer_id", "customer_name", "tier", "annual_spend", "prior_annual_spend", "yoy_growth",
                     "monetary", "recency_days", "frequency", "last_order_date", "rfm_segment", "churn_risk")


def build_context(result: Segmentation, doc: dict[str, Any], *, top_n: int = TOP_N) -> dict[str, Any]:
    """The report context of a ``Segmentation`` and its summary document."""
    doc = to_jsonable(doc)
    cfg = result.config
    lang = "zh" if cfg.lang == "zh" else "en"
    t = ui(lang)
    names = Names(cfg, lang, result.tiers)
    customers = result.customers
    tiers = tier_section(doc, customers, names, t)
    ctx = {
        "lang": lang,
        "t": t,
        "meta": meta_section(doc, t, tiers, names),
        "tiers": tiers,
        "profit": profit_section(doc, names, t),
        "outlook": outlook_section(doc, customers, result.tiers, names, top_n),
        "mix": mix_section(doc, names, t),
        "rfm": rfm_section(doc, customers, names, t, cfg),
        "clusters": cluster_section(doc, names, t),
        "validation": validation_section(doc, names, t, lang),
        "migration": migration_section(doc, names, t, top_n),
        "quality": quality_section(doc, result.notes, t, names),
        "top": top_lists(customers, names, t, top_n, result.clv),
        "clv": clv_section(doc, customers, result.clv,
                           [(code, names.tier(code)) for code in names.tier_codes], lang, top_n),
        "customers_table": customer_columns(result.assignments, t),
        "warnings": warning_rows(doc, lang),
        "actions": actions_section(customers, cfg, names, t, lang),
        "movers": movers_section(result, names, t, top_n),
        "suggested_tiers": suggested_section(doc, names),
        "sheets": {k.removeprefix("sheet_"): v for k, v in t.items() if k.startswith("sheet_")},
        "currency": doc.get("currency"),
        "category_values": category_values(cfg, names, doc),
    }
    jsonable: dict[str, Any] = to_jsonable(ctx)
    return jsonable


# --- overview ---------------------------------------------------------------------------------

def meta_section(doc: dict[str, Any], t: dict[str, Any], tiers: dict[str, Any], names: Names) -> dict[str, Any]:
    """Header facts and the key figures shown on top of both reports."""
    inp, win = doc["input"], doc.get("windows") or {}
    cov = doc.get("coverage") or {}
    covered = f"{cov['first_date']} – {cov['last_date']}" if cov.get("first_date") else t["not_available"]
    kind = t["input_kind_customers"] if doc.get("input_kind") == "customers" else t["input_kind_orders"]
    facts = [
        (t["as_of"], doc["as_of"] or t["not_available"], "text"),
        (t["tier_window"], f"{win['tier_start']} – {win['tier_end']}" if win else t["not_available"], "text"),
        (t["covered_range"], covered, "text"),
        (t["full_windows"], cov.get("full_windows"), "int"),
        (t["currency"], doc.get("currency") or t["currency_unknown"], "text"),
        (t["input_kind"], kind, "text"),
        (t["tier_scheme"], names.word("tier_scheme", (doc.get("tiering") or {}).get("scheme", "config")), "text"),
        (t["input"], inp.get("path", ""), "text"),
        (t["input_rows"], inp.get("rows"), "int"),
        (t["rejected_rows"], inp.get("rejected_rows"), "int"),
        (t["customers"], doc["customers"], "int"),
        (t["customers_without_purchase"], doc.get("customers_without_purchase", 0), "int"),
        (t["total_annual_spend"], doc.get("total_annual_spend"), "money"),
        (t["total_monetary"], doc.get("total_monetary"), "money"),
        (t["segkit_version"], doc.get("segkit_version", ""), "text"),
        (t["sha256"], inp.get("sha256", ""), "text"),
    ]
    unit = f" ({doc['currency']})" if doc.get("currency") else ""
    kpis = [
        {"label": t["customers"], "value": doc["customers"], "kind": "int"},
        {"label": t["total_annual_spend"] + unit, "value": doc.get("total_annual_spend"), "kind": "money"},
        {"label": t["covered_range"], "value": covered, "kind": "text"},
    ]
    if tiers["headline"]:
        kpis.append({"label": t["tiers_pareto"], "value": tiers["headline"], "kind": "text"})
    return {
        "title": t["title"],
        "as_of": doc["as_of"],
        "input_name": inp.get("name", ""),
        "segkit_version": doc.get("segkit_version", ""),
        "facts": [{"label": a, "value": v, "kind": k} for a, v, k in facts],
        "covered": covered,
        "currency": doc.get("currency") or t["currency_unknown"],
        "kpis": kpis,
    }


# --- tiers ------------------------------------------------------------------------------------

def tier_section(doc: dict[str, Any], customers: pl.DataFrame, names: Names, t: dict[str, Any]) -> dict[str, Any]:
    """Tier table (the Pareto view), its chart, and tier × churn risk / lifecycle cross-tabs."""
    rows = []
    for r in doc["tiers"]:
        rows.append({
            "key": r["tier"], "name": names.tier(r["tier"]), "en": r["tier"], "zh": r.get("zh", r["tier"]),
            "other": names.tier_other(r["tier"]),
            "min": r.get("min"), "customers": r["customers"],
            "share_of_customers": r["share_of_customers"],
            "cum_share_of_customers": r["cumulative_share_of_customers"],
            "annual_spend": r["annual_spend"], "share_of_spend": r["share_of_spend"],
            "cum_share_of_spend": r["cumulative_share_of_spend"],
            "avg_spend": r["annual_spend"] / r["customers"] if r["customers"] else None,
        })
    total = {"customers": doc["customers"], "annual_spend": doc.get("total_annual_spend"),
             "share_of_customers": 1.0 if doc["customers"] else 0.0,
             "share_of_spend": 1.0 if (doc.get("total_annual_spend") or 0) > 0 else None}
    chart = svg.pareto([r["name"] for r in rows], [r["annual_spend"] for r in rows],
                       [r["cum_share_of_spend"] for r in rows], title=t["pareto_chart"], zh=names.zh,
                       legend=(t["annual_spend"], t["cum_share_of_spend"]))
    churn = crosstab(customers, "tier", "churn_risk", [r["key"] for r in rows], ["high", "medium", "low"])
    life = crosstab(customers, "tier", "lifecycle", [r["key"] for r in rows],
                    list(LIFECYCLES))
    return {
        "rows": rows, "total": total, "chart": chart, "headline": pareto_headline(rows, names.zh),
        "by_churn": _named_crosstab(churn, names.tier, names.churn, t),
        "by_lifecycle": _named_crosstab(life, names.tier, names.lifecycle, t),
    }


def pareto_headline(rows: list[dict[str, Any]], zh: bool) -> str:
    """'15% of customers bring 85% of annual spend': the first tier reaching 80% of spend.

    Empty when that takes (nearly) every customer, e.g. when all customers share one tier.
    """
    for r in rows:
        cum, c = r["cum_share_of_spend"], r["cum_share_of_customers"]
        if cum is not None and cum >= 0.8:
            if c > 0.995:  # every customer in one tier: nothing to say
                return ""
            if zh:
                return f"{c:.0%} 的客户贡献了 {cum:.0%} 的年度采购额"
            return f"{c:.0%} of customers bring {cum:.0%} of annual spend"
    return ""


def crosstab(df: pl.DataFrame, row: str, col: str, row_order: list[str], col_order: list[str]) -> dict[str, Any]:
    """Counts of customers by two columns, in the given orders (nulls last, when present)."""
    counts = {(a, b): n for a, b, n in df.group_by(row, col).len().iter_rows()}
    cols = list(col_order) + ([None] if any(b is None for _, b in counts) else [])
    return {"row_codes": row_order, "col_codes": cols,
            "counts": [[int(counts.get((a, b), 0)) for b in cols] for a in row_order]}


def _named_crosstab(tab: dict[str, Any], row_name: Callable[[str | None], str],
                    col_name: Callable[[str | None], str], t: dict[str, Any]) -> dict[str, Any]:
    return {
        "rows": [row_name(c) for c in tab["row_codes"]],
        "columns": [t["none"] if c is None else col_name(c) for c in tab["col_codes"]],
        "counts": tab["counts"],
        "totals": [sum(r) for r in tab["counts"]],
    }


def mix_section(doc: dict[str, Any], names: Names, t: dict[str, Any]) -> list[dict[str, Any]]:
    """Customers by lifecycle, churn risk, persona and value class."""
    n = doc["customers"] or 1
    groups = (("lifecycle", t["lifecycle"], names.lifecycle), ("churn_risk", t["churn_risk"], names.churn),
              ("personas", t["persona"], names.persona), ("value_classes", t["value_class"], names.value_class))
    out = []
    for key, title, name in groups:
        rows = [{"name": t["none"] if r["value"] is None else name(r["value"]), "customers": r["customers"],
                 "share": r["customers"] / n} for r in doc.get(key, [])]
        out.append({"key": key, "title": title, "rows": rows})
    return out


# --- RFM --------------------------------------------------------------------------------------

def _range_text(lo_hi: Sequence[float | None]) -> str:
    lo, hi = lo_hi
    return str(lo) if lo == hi else f"{lo}–{hi}"


def rfm_section(doc: dict[str, Any], customers: pl.DataFrame, names: Names, t: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Segment table and chart, R×F heat tables, and the score cut points used."""
    ranges = {s.name: (_range_text(s.r), _range_text(s.f), _range_text(s.m)) for s in cfg.segments}
    segments = []
    for r in doc["segments"]:
        rr, ff, mm = ranges.get(r["segment"], ("", "", ""))
        segments.append({"key": r["segment"], "name": names.segment(r["segment"]), "en": r["segment"],
                         "zh": r.get("zh", ""), "r": rr, "f": ff, "m": mm, "customers": r["customers"],
                         "share": r["share"], "monetary": r["monetary"]})
    chart = svg.hbars([s["name"] for s in segments], [s["customers"] for s in segments],
                      [f"{s['customers']:,} ({s['share']:.1%})" for s in segments], title=t["segment_chart"])
    rfm = doc.get("rfm", {})
    return {
        "segments": segments, "chart": chart, "heat": heat_table(customers, t),
        "cut_points": cut_point_rows(rfm.get("cut_points", {}), names),
        "collapsed": [{"metric": names.metric(m), "scores": v.get("collapsed", [])}
                      for m, v in rfm.get("cut_points", {}).items() if v.get("collapsed")],
        "method": rfm.get("method", ""),
        "score_means": [{"score": t.get(k, k), "mean": v} for k, v in rfm.get("score_means", {}).items()],
        "others_combinations": doc.get("segments_others_combinations", []),
    }


def heat_table(customers: pl.DataFrame, t: dict[str, Any]) -> dict[str, Any]:
    """Customers and mean net amount by R score (rows, 5 first) and F score (columns, 1 first).

    The mean is the exact integer sum of the cell's net amounts in micro-units over its customers,
    rounded once: a mean of the float column would change in its last digit with polars' thread
    count (see customers/sums.py)."""
    g = customers.group_by("r_score", "f_score").agg(pl.len().alias("n"), pl.col("_monetary").count().alias("k"),
                                                     pl.col("_monetary").sum().alias("s"))
    cells = {(int(r), int(f)): (int(n), int(s) / (k * MICRO) if k else None) for r, f, n, k, s in g.iter_rows()
             if r is not None and f is not None}
    counts = [[cells.get((r, f), (0, None))[0] for f in SCORES_ASC] for r in SCORES_DESC]
    means = [[cells.get((r, f), (0, None))[1] for f in SCORES_ASC] for r in SCORES_DESC]
    rows = [f"R{r}" for r in SCORES_DESC]
    cols = [f"F{f}" for f in SCORES_ASC]
    tips = [[f"R{r} F{f}: {counts[i][j]:,} · {t['mean_monetary']} "
             + ("–" if means[i][j] is None else f"{means[i][j]:,.0f}")
             for j, f in enumerate(SCORES_ASC)] for i, r in enumerate(SCORES_DESC)]
    chart = svg.heatmap(rows, cols, counts, [[f"{c:,}" for c in row] for row in counts], title=t["heat_title"],
                        tips=tips)
    return {"rows": rows, "columns": cols, "counts": counts, "mean_monetary": means, "chart": chart}


def cut_point_rows(cut_points: dict[str, Any], names: Names) -> list[dict[str, Any]]:
    rows = []
    for metric, spec in cut_points.items():
        for b in spec.get("bins", []):
            rows.append({"metric": names.metric(metric), "score": b["score"], "customers": b["customers"],
                         "min": b.get("min"), "max": b.get("max")})
    return rows


# --- clusters and validation ------------------------------------------------------------------

def cluster_section(doc: dict[str, Any], names: Names, t: dict[str, Any]) -> dict[str, Any]:
    """Cluster profiles in original units, centres as z-scores (charted), silhouette by k."""
    cl = doc.get("clusters")
    if not cl:
        return {"available": False, "reason": t["not_available"]}
    if cl.get("skipped_reason") or not cl.get("profiles"):
        return {"available": False, "reason": cl.get("skipped_reason") or t["not_available"]}
    features = cl["features"]
    profiles = []
    for p in cl["profiles"]:
        profiles.append({
            **{k: p.get(k) for k in ("cluster", "customers", "share", "mean_recency_days", "median_recency_days",
                                      "mean_frequency", "median_frequency", "mean_monetary", "median_monetary",
                                      "mean_annual_spend", "median_annual_spend")},
            "label": names.cluster(p),
            "dominant_tier": names.tier(p.get("dominant_tier")),
            "dominant_segment": names.segment(p.get("dominant_segment")),
            "dominant_persona": names.persona(p.get("dominant_persona")),
            "z": [p.get("centroid_z", {}).get(f) for f in features],
        })
    feature_names = [names.feature(f) for f in features]
    chart = svg.grouped_bars([f"{t['cluster']} {p['cluster']}" for p in profiles], feature_names,
                             [p["z"] for p in profiles], title=t["cluster_chart"])
    return {
        "available": True, "k": cl["k"],
        "k_choice": cl.get("k_choice_zh" if names.zh else "k_choice") or cl.get("k_choice", ""),
        "reduced_reason": cl.get("reduced_reason"), "features": feature_names,
        "customers_clustered": cl.get("customers_clustered"),
        "customers_excluded": cl.get("customers_excluded_no_purchase"),
        "profiles": profiles, "chart": chart,
        "silhouette_by_k": [{"k": int(k), "silhouette": v, "chosen": int(k) == cl["k"]}
                            for k, v in cl.get("silhouette_by_k", {}).items()],
    }


def _significant(p: float | None, alpha: float) -> bool | None:
    return None if p is None else p < alpha


def _validation_warnings(doc: dict[str, Any], v: dict[str, Any], lang: str) -> list[str]:
    """Validation's notes; in Chinese, the low-expected-count notes come from summary.json's warnings."""
    if lang != "zh":
        return list(v.get("warnings", []))
    low = [w["message_zh"] for w in doc.get("warnings", []) if w["code"] == "low_expected_counts" and w.get("message_zh")]
    return low + [w for w in v.get("warnings", []) if "expected counts" not in str(w)]


def validation_section(doc: dict[str, Any], names: Names, t: dict[str, Any], lang: str) -> dict[str, Any]:
    """The verdict and the null-reference test that decides it; stability; descriptive tables
    (ANOVA / Kruskal–Wallis, fit, Tukey HSD) labelled as such; chi-square of external attributes;
    cross-tables of cluster × tier and × RFM segment without tests."""
    v = doc.get("validation")
    if not v:
        return {"available": False, "verdict": t["not_available"]}
    zh = lang == "zh"
    alpha = v.get("alpha", 0.01)
    verdict = (v.get("verdict_zh") or v.get("verdict_text", "")) if zh else v.get("verdict_text", "")
    if v.get("skipped_reason"):
        return {"available": False, "verdict": verdict}
    features = []
    for f, a in v.get("anova", {}).items():
        kw = v.get("kruskal", {}).get(f, {})
        features.append({"feature": names.feature(f), "f": a.get("f"), "p_anova": a.get("p"), "eta2": a.get("eta2"),
                         "h": kw.get("h"), "p_kruskal": kw.get("p"), "epsilon2": kw.get("epsilon2")})
    chi2 = []
    for var, c in v.get("chi2", {}).items():
        low = c.get("low_expected_share")
        chi2.append({"variable": names.variable(var), "chi2": c.get("chi2"), "dof": c.get("dof"), "p": c.get("p"),
                     "cramers_v": c.get("cramers_v"), "low_expected_share": low,
                     "low_warning": low is not None and low > 0.2, "significant": _significant(c.get("p"), alpha),
                     "skipped_reason": c.get("skipped_reason")})
    tukey = [{"feature": names.feature(f), "a": p["a"], "b": p["b"], "mean_diff": p.get("mean_diff"),
              "p": p.get("p")}
             for f, pairs in v.get("tukey_hsd", {}).items() for p in pairs]
    reading = v.get("silhouette_reading_zh" if zh else "silhouette_reading")
    fit = [{"label": t["r2"], "value": v.get("r2"), "kind": "pct"},
           {"label": t["silhouette"], "value": v.get("silhouette"), "kind": "float"},
           {"label": t["silhouette_reading"], "value": reading, "kind": "text"},
           {"label": t["calinski_harabasz"], "value": v.get("calinski_harabasz"), "kind": "float"},
           {"label": t["davies_bouldin"], "value": v.get("davies_bouldin"), "kind": "float"}]
    return {"available": True, "verdict": verdict, "alpha": alpha,
            "null_test": null_test_facts(v, t), "null_tests": null_test_rows(v, t, lang), "stability": stability_rows(doc, names, t, zh),
            "descriptive_note": v.get("descriptive_note_zh" if zh else "descriptive_note", ""),
            "features": features, "fit": fit, "chi2": chi2, "tukey": tukey,
            "cross_tables": cross_tables(v, names, t), "warnings": _validation_warnings(doc, v, lang)}


def null_test_facts(v: dict[str, Any], t: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict's facts: its code, the groups it supports, how k was chosen, the test sample."""
    tests = v.get("null_tests") or []
    if not tests:
        return []
    return [{"label": t["verdict_code"], "value": t[f"verdict_{v.get('verdict')}"], "kind": "text"},
            {"label": t["distinct"], "value": t["yes"] if v.get("distinct") else t["no"], "kind": "text"},
            {"label": t["groups"], "value": v.get("groups"), "kind": "int"},
            {"label": t["k_rule"], "value": t.get(f"k_rule_{str(v.get('k_rule')).replace(' ', '_')}", v.get("k_rule")),
             "kind": "text"},
            {"label": t["test_sample"], "value": tests[0]["sample_size"], "kind": "int"},
            {"label": t["alpha"], "value": v.get("alpha", 0.01), "kind": "p"},
            {"label": t["null_method"], "value": t["null_method_text"], "kind": "text"}]


def null_test_rows(v: dict[str, Any], t: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """One row per one-population null: its statistic at k against its replicates, or why it did not run."""
    from segkit.i18n import message

    rows = []
    for n in v.get("null_tests") or []:
        stat = message("verdict", f"stat_{n['statistic_name']}", lang) if n.get("statistic_name") else None
        rejects = (t["yes"] if n["p"] < n.get("alpha", 0.01) else t["no"]) if n["ran"] else t["not_run"]
        rows.append({"null": message("verdict", f"null_{n['null']}", lang), "statistic_name": stat, "k": n.get("k"),
                     "statistic": n["statistic"], "null_mean": n["null_mean"], "null_sd": n["null_sd"],
                     "replicates": n["replicates"], "p": n["p"], "rejects": rejects, "reason": n.get("reason")})
    return rows


def stability_rows(doc: dict[str, Any], names: Names, t: dict[str, Any], zh: bool) -> dict[str, Any]:
    st = (doc.get("validation") or {}).get("stability") or {}
    profiles = (doc.get("clusters") or {}).get("profiles") or []
    if not st or len(profiles) != len(st.get("per_cluster", [])):
        return {"rows": [], "note": ""}
    rows = [{"cluster": p["cluster"], "label": names.cluster(p), "jaccard": j, "reading": t[f"stability_{r}"]}
            for p, j, r in zip(profiles, st["per_cluster"], st["reading"])]
    return {"rows": rows, "mean": st["mean"], "resamples": st["resamples"],
            "note": st.get("note_zh" if zh else "note", "")}


def cross_tables(v: dict[str, Any], names: Names, t: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for var, tab in (v.get("cross_tables") or {}).items():
        name = names.tier if var == "tier" else names.segment
        out.append({"title": f"{t['cluster']} × {names.variable(var)}", "row_label": t["cluster"],
                    "columns": [name(c) for c in tab["columns"]], "rows": tab["rows"], "counts": tab["counts"],
                    "totals": [sum(r) for r in tab["counts"]]})
    return out


# --- migration --------------------------------------------------------------------------------

def migration_section(doc: dict[str, Any], names: Names, t: dict[str, Any], top_n: int) -> dict[str, Any] | None:
    """Tier changes, the previous × current matrix (counts and spend), lost customers; None without --previous."""
    m = doc.get("migration")
    if not m:
        return None
    tiers = set(m.get("matrix", {}).get("tiers", []))

    def label(code: str) -> str:
        return names.tier(code) if code in tiers else names.change(code)

    changes = [{"code": c, "name": names.change(c), "customers": m.get("changes", {}).get(c, 0)} for c in CHANGES]
    changes.append({"code": "lost", "name": names.change("lost"), "customers": m.get("lost_customers", 0)})
    counts = m.get("matrix", {}).get("counts", [])
    spend = m.get("matrix", {}).get("spend", [])
    peak = max((c for row in counts for c in row), default=0)
    lost = sorted(m.get("lost", []), key=lambda r: (-(r.get("previous_annual_spend") or 0), str(r["customer_id"])))
    lost_rows = [{"customer_id": r["customer_id"], "customer_name": r.get("customer_name"),
                  "previous_tier": names.tier(r.get("previous_tier")),
                  "previous_annual_spend": r.get("previous_annual_spend")} for r in lost]
    unknown = m.get("unknown_previous_tiers") or []
    at_prev = _at_previous_bounds(m, names, t)
    if at_prev:
        for c in changes:
            c["at_previous"] = at_prev["changes"].get(c["code"], m.get("lost_customers", 0))
    return {
        "at_previous": at_prev,
        "previous": m.get("previous", ""),
        "unknown_tiers": t["unknown_previous_tiers"].format(tiers=", ".join(unknown)) if unknown else "",
        "changes": changes,
        "rows": [label(c) for c in m.get("row_labels", [])],
        "columns": [label(c) for c in m.get("column_labels", [])],
        "counts": counts,
        "spend": spend,
        "colors": [[svg.heat_color(c, peak) for c in row] for row in counts],
        "text_classes": [[svg.heat_text_class(c, peak) for c in row] for row in counts],
        "lost": lost_rows,
        "lost_top": lost_rows[:top_n],
        "lost_more": t["lost_more"].format(shown=min(top_n, len(lost_rows)), total=len(lost_rows))
        if len(lost_rows) > top_n else "",
    }


def _at_previous_bounds(m: dict[str, Any], names: Names, t: dict[str, Any]) -> dict[str, Any] | None:
    """The moves with this run re-tiered at the earlier run's bounds (when the bounds changed)."""
    a = m.get("at_previous_bounds")
    if not a:
        return None
    tiers = set(a["matrix"]["tiers"])

    def label(code: str) -> str:
        return names.tier(code) if code in tiers else names.change(code)

    b = m.get("tier_bounds") or {}
    def bounds(ts: list[dict[str, Any]]) -> str:
        return ", ".join(f"{names.tier(x['name'])} ≥ {x['min']:,.0f}" for x in ts if x.get("min") is not None)

    return {"changes": a["changes"], "rows": [label(c) for c in a["row_labels"]],
            "columns": [label(c) for c in a["column_labels"]], "counts": a["matrix"]["counts"],
            "note": t["bounds_changed_note"].format(previous=bounds(b.get("previous", [])),
                                                    current=bounds(b.get("current", [])))}


# --- data quality -----------------------------------------------------------------------------

def quality_section(doc: dict[str, Any], notes: Sequence[str], t: dict[str, Any], names: Names) -> dict[str, Any]:
    """Row counts, rejected reasons, the column mapping and reading notes."""
    q = doc.get("data_quality", {})
    counts = [{"label": t[k], "value": q.get(k), "kind": "pct" if k == "rejected_share" else "int"}
              for k in QUALITY_KEYS if k in q]
    data_rows = q.get("data_rows") or 0
    from segkit.outputs.report.labels import note_text, reason_text

    lang = "zh" if names.zh else "en"
    reasons = [{"reason": reason_text(reason, lang), "rows": n, "share": n / data_rows if data_rows else None}
               for reason, n in q.get("rejected_reasons", {}).items()]
    inp = doc.get("input", {})
    mapping = [{"role": names.word("role", role), "header": header} for role, header in inp.get("columns", {}).items()]
    details = [{"label": t[key], "value": inp.get(key)} for key in ("format", "encoding", "sheet", "header_row")
               if inp.get(key) is not None]
    return {"counts": counts, "reasons": reasons, "mapping": mapping, "input": details,
            "notes": [note_text(n, lang) for n in notes]}


# --- customer lists ---------------------------------------------------------------------------

def _list_rows(df: pl.DataFrame, names: Names, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = df.select([c for c in (*TIER_LIST_COLUMNS, *extra) if c in df.columns]).to_dicts()
    for r in rows:
        r["tier"] = names.tier(r.get("tier"))
        r["rfm_segment"] = names.segment(r.get("rfm_segment"))
        r["churn_risk"] = names.churn(r.get("churn_risk"))
    return rows


def top_lists(customers: pl.DataFrame, names: Names, t: dict[str, Any], top_n: int, clv: ClvResult | None = None) -> dict[str, Any]:
    """Top customers by annual spend, and the customers at high churn risk with recent spend,
    largest value at risk first (see clv_section)."""
    cols = [{"key": c, "label": t[c], "kind": _kind(c, customers.schema[c])}
            for c in TIER_LIST_COLUMNS if c in customers.columns]
    by_spend = customers.sort(["annual_spend", "customer_id"], descending=[True, False]).head(top_n)
    churn = churn_warnings(customers, clv, top_n)
    risk_col = {"key": "_value_at_risk", "label": t["value_at_risk"], "kind": "money"}
    return {
        "columns": cols,
        "spend": {"title": t["top_spend"].format(n=top_n), "rows": _list_rows(by_spend, names), "columns": cols},
        "churn": {"title": t["top_churn"].format(n=top_n), "rows": _list_rows(churn, names, ("_value_at_risk",)),
                  "empty": t["no_high_churn"], "columns": [*cols, risk_col]},
        "note": t["customers_sheet_note"],
    }


# --- the Customers sheet ----------------------------------------------------------------------

def _kind(name: str, dtype: pl.DataType) -> str:
    """How a customer column is shown: text, date, money, share, code (a small number) or int."""
    if name in MONEY_COLUMNS:
        return "money"
    if name in SHARE_COLUMNS:
        return "pct"
    if name in CODE_COLUMNS:
        return "code"
    if dtype == pl.Date:
        return "date"
    if dtype.is_float():
        return "float"
    if dtype.is_integer():
        return "int"
    return "text"


HEADER_KEYS = {"cluster": "cluster", "persona": "persona", "lifecycle": "lifecycle", "churn_risk": "churn_risk",
               "tier": "tier", "previous_tier": "previous_tier_col", "value_class": "value_class"}
CATEGORY_COLUMNS = ("tier", "previous_tier", "rfm_segment", "persona", "lifecycle", "churn_risk", "tier_change")


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


WIDTHS = {"money": 16, "pct": 10, "code": 8, "date": 12, "float": 14, "int": 10}


def customer_columns(assignments: pl.DataFrame, t: dict[str, Any] | None = None) -> dict[str, Any]:
    """Name, header (in the report language), kind and column width of each assignments column."""
    t = t or {}
    text = [c for c, d in assignments.schema.items() if _kind(c, d) == "text" and d == pl.String]
    # display width: (chars + UTF-8 bytes) / 2 counts ASCII once and CJK characters twice
    width = [((pl.col(c).str.len_chars() + pl.col(c).str.len_bytes()) // 2).max().alias(c) for c in text]
    lengths = assignments.select(width).row(0, named=True) if text and assignments.height else {}
    columns = []
    for name, dtype in assignments.schema.items():
        kind = _kind(name, dtype)
        base = (lengths.get(name) or 0) + 2 if kind == "text" else WIDTHS[kind]
        header = t.get(HEADER_KEYS.get(name, name), name)
        columns.append({"name": name, "header": header, "kind": kind,
                        "width": max(min(base, 48), min(_display_width(header) + 3, 24), 8)})
    return {"columns": columns, "rows": assignments.height}


# --- guidance: warnings, actions, movers, suggested tiers ----------------------------------------

def warning_rows(doc: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    return [{"code": w["code"], "message": (w.get("message_zh") or w["message"]) if lang == "zh" else w["message"]}
            for w in doc.get("warnings", [])]


def _group_stats(customers: pl.DataFrame, col: str) -> dict[str, Any]:
    """Per value of ``col``: customers, their share, and their share of the (positive) annual spend,
    summed in exact integer micro-units so that the share does not depend on the order of the sum."""
    n = customers.height or 1
    total = int(customers["_annual"].clip(lower_bound=0).sum() or 0)
    g = customers.group_by(col).agg(pl.len(), pl.col("_annual").clip(lower_bound=0).sum())
    return {k: (c, c / n, (int(s) / total) if total > 0 else None) for k, c, s in g.iter_rows() if k is not None}


def actions_section(customers: pl.DataFrame, cfg: Config, names: Names, t: dict[str, Any], lang: str) -> dict[str, Any]:
    """Recommended actions per tier (config order) and per persona, with each group's size and spend share."""
    from segkit.config import ACTION_FIELDS

    text = {(a.kind, a.name): (a.zh if lang == "zh" else a.en) for a in cfg.actions}
    out = {"fields": [{"key": f, "label": t[f]} for f in ACTION_FIELDS]}
    for kind, order, name in (("tier", names.tier_codes, names.tier),
                              ("persona", [x.name for x in cfg.personas], names.persona)):
        stats = _group_stats(customers, kind)
        rows = []
        for code in order:
            c, share, spend = stats.get(code, (0, 0.0, None))
            fields = text.get((kind, code), {})
            rows.append({"name": name(code), "customers": c, "share": share, "share_of_spend": spend,
                         **{f: fields.get(f, "") for f in ACTION_FIELDS}})
        out[kind] = rows
    return out


def movers_section(result: Segmentation, names: Names, t: dict[str, Any], top_n: int) -> dict[str, Any] | None:
    """Who moved up, down, was new or lost, by spend change (all in the workbook, top N in the HTML)."""
    df = movers_of(result)
    if df is None:
        return None
    rows = df.to_dicts()
    for r in rows:
        r["movement"] = names.change(r["movement"])
        r["previous_tier"] = names.tier(r.get("previous_tier"))
        r["tier"] = names.tier(r.get("tier"))
    shown = min(top_n, len(rows))
    return {"rows": rows, "top": rows[:top_n], "has_name": "customer_name" in df.columns,
            "more": t["movers_more"].format(shown=shown, total=len(rows)) if len(rows) > top_n else ""}


def suggested_section(doc: dict[str, Any], names: Names) -> list[dict[str, Any]]:
    conc = (doc.get("tiering") or {}).get("concentration") or {}
    return [{"name": names.zh and s.get("zh") or s["name"], "min": s.get("min")}
            for s in conc.get("suggested_tiers", [])]


def category_values(cfg: Config, names: Names, doc: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """code -> display name, in the report language, for the category columns of the Customers
    sheet (the files keep the codes: SPEC §3 "codes, not labels")."""
    from segkit.customers.metrics import VALUE_CLASSES
    from segkit.outputs.report.labels import BUILTIN_SEGMENTS, CHANGE, CHURN, LIFECYCLE

    tiers = {code: names.tier(code) for code in names.tier_codes}
    segs = {code: names.segment(code) for code in [s.name for s in cfg.segments] + list(BUILTIN_SEGMENTS)}
    profiles = ((doc or {}).get("clusters") or {}).get("profiles") or []
    return {
        "tier": tiers, "previous_tier": tiers, "rfm_segment": segs,
        "persona": {p.name: names.persona(p.name) for p in cfg.personas},
        "lifecycle": {k: names.lifecycle(k) for k in LIFECYCLE},
        "churn_risk": {k: names.churn(k) for k in CHURN},
        "tier_change": {k: names.change(k) for k in CHANGE},
        "value_class": {k: names.value_class(k) for k in VALUE_CLASSES.values()},
        "cluster_label": {p["label"]: names.cluster(p) for p in profiles if p.get("label")},
    }
