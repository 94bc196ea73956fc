"""An independent, deliberately plain implementation of SPEC §3 (pure Python + numpy).

It shares no code with segkit: tests run both on the same order lines and compare every column.
Input: a list of (customer_id, order_key, date, amount) with amount a float in currency units.
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from collections import Counter, defaultdict

TIERS = [("strategic", 10_000_000), ("key", 3_000_000), ("growth", 1_000_000), ("regular", 300_000),
         ("scattered", None)]
SEGMENTS = [
    ("Champions", (5, 5), (5, 5), (5, 5)),
    ("Potential Loyalist", (3, 5), (3, 5), (2, 5)),
    ("Loyal Customers", (2, 4), (2, 4), (2, 4)),
    ("Promising", (3, 4), (1, 3), (3, 5)),
    ("New Customers", (4, 5), (1, 3), (1, 5)),
    ("Can't Lose Them", (1, 2), (3, 4), (4, 5)),
    ("At Risk", (1, 2), (2, 5), (4, 5)),
    ("Need Attention", (1, 3), (3, 5), (3, 5)),
    ("About To Sleep", (2, 3), (1, 3), (1, 4)),
    ("Lost", (1, 1), (1, 5), (1, 5)),
]
VALUE = {(1, 1, 1): "important_value", (1, 0, 1): "important_development", (0, 1, 1): "important_retention",
         (0, 0, 1): "important_winback", (1, 1, 0): "general_value", (1, 0, 0): "general_development",
         (0, 1, 0): "general_retention", (0, 0, 0): "general_winback"}


def segment(r: int, f: int, m: int) -> str:
    """The first row of SEGMENTS whose score ranges all hold, else "Others"."""
    for name, (r0, r1), (f0, f1), (m0, m1) in SEGMENTS:
        if r0 <= r <= r1 and f0 <= f <= f1 and m0 <= m <= m1:
            return name
    return "Others"


def _score_higher_better(values: list[float]) -> list[int]:
    n = len(values)
    srt = sorted(values)
    return [1 + (5 * bisect.bisect_left(srt, v)) // n for v in values]


def compute(lines, as_of: dt.date | None = None) -> dict[str, dict]:
    as_of = as_of or max(d for _, _, d, _ in lines) + dt.timedelta(days=1)
    lines = [ln for ln in lines if ln[2] < as_of]
    tier_start, tier_end = as_of - dt.timedelta(days=365), as_of - dt.timedelta(days=1)
    prior_start, prior_end = tier_start - dt.timedelta(days=365), tier_start - dt.timedelta(days=1)
    # SPEC §3 coverage: a year-on-year comparison needs the data to reach back over both windows
    two_windows = min(d for _, _, d, _ in lines) <= prior_start
    money = defaultdict(float)
    annual = defaultdict(float)
    prior = defaultdict(float)
    orders: dict[tuple, list] = {}
    for cid, key, d, amt in lines:
        money[cid] += amt
        if tier_start <= d <= tier_end:
            annual[cid] += amt
        if prior_start <= d <= prior_end:
            prior[cid] += amt
        o = orders.setdefault((cid, key), [d, 0.0])
        o[0] = min(o[0], d)
        o[1] += amt
    purchases = defaultdict(list)
    for (cid, _), (d, net) in orders.items():
        if round(net, 6) > 0:
            purchases[cid].append(d)
    all_gaps = []
    own_gap = {}
    for cid, ds in purchases.items():
        u = sorted(set(ds))
        gaps = [(b - a).days for a, b in zip(u, u[1:])]
        all_gaps += gaps
        if gaps:
            own_gap[cid] = statistics.median(gaps)
    pop_gap = statistics.median(all_gaps) if all_gaps else None
    ids = sorted(money)
    n = len(ids)
    out = {}
    for cid in ids:
        ds = purchases.get(cid, [])
        last = max(ds) if ds else None
        out[cid] = {
            "first_order_date": min(ds) if ds else None,
            "last_order_date": last,
            "recency_days": (as_of - last).days if last else None,
            "frequency": len(ds),
            "monetary": money[cid],
            "annual_spend": annual[cid],
            "prior_annual_spend": prior[cid] if two_windows else None,  # SPEC §3 coverage
        }
    rec = [-(out[c]["recency_days"] if out[c]["recency_days"] is not None else 10**12) for c in ids]
    r = _score_higher_better(rec)
    f = _score_higher_better([out[c]["frequency"] for c in ids])
    m = _score_higher_better([round(out[c]["monetary"], 6) for c in ids])
    mr, mf, mm = sum(r) / n, sum(f) / n, sum(m) / n
    for i, cid in enumerate(ids):
        row = out[cid]
        row.update(r_score=r[i], f_score=f[i], m_score=m[i], rfm_score=f"{r[i]}{f[i]}{m[i]}")
        row["rfm_segment"] = "Lost" if row["last_order_date"] is None else segment(r[i], f[i], m[i])
        row["value_class"] = VALUE[(int(r[i] >= mr), int(f[i] >= mf), int(m[i] >= mm))]
        a = round(row["annual_spend"], 6)
        row["tier"] = next(name for name, lo in TIERS if lo is None or a >= lo)
        p = round(row["prior_annual_spend"] or 0.0, 6)
        row["yoy_growth"] = row["annual_spend"] / row["prior_annual_spend"] - 1 if p > 0 else None
        ds = purchases.get(cid, [])
        if not any(tier_start <= d <= tier_end for d in ds):
            life = "lapsed"
        elif tier_start <= min(ds) <= tier_end:
            life = "new"
        elif row["yoy_growth"] is not None and row["yoy_growth"] >= 0.2 - 1e-9:
            life = "growing"
        elif row["yoy_growth"] is not None and row["yoy_growth"] <= -0.2 + 1e-9:
            life = "declining"
        else:
            life = "mature"
        if not two_windows:
            row["yoy_growth"] = None
            life = "lapsed" if life == "lapsed" else None
        row["lifecycle"] = life
        gap = own_gap.get(cid) if len(ds) >= 3 and cid in own_gap else pop_gap
        rd = row["recency_days"]
        if rd is None:
            row["churn_risk"] = "high"
        elif gap is None:
            row["churn_risk"] = None
        else:
            row["churn_risk"] = "high" if rd > 3 * gap else ("medium" if rd > 1.5 * gap else "low")
    return out


def most_frequent(pairs) -> dict:
    """customer -> most frequent value (ties: alphabetically first)."""
    counts = defaultdict(Counter)
    for cid, v in pairs:
        if v:
            counts[cid][v] += 1
    return {cid: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for cid, c in counts.items()}


def clv_churn(want: dict, lines, got: dict, summary: dict, as_of: dt.date | None = None) -> dict:
    """When summary.json says churn_risk follows p_alive, customers with more than one purchase day
    (days whose net amount is positive, before as_of) are rated from the p_alive column with the
    thresholds of the effective config; everyone else keeps the recency rule."""
    clv = summary.get("clv", {})
    if (clv.get("churn_rule_code") or {}).get("code") != "p_alive":
        return want
    cfg = summary["config"]["clv"]
    as_of = as_of or dt.date.fromisoformat(summary["as_of"])
    net = defaultdict(float)
    for cid, _order, d, amount in lines:
        if d < as_of:
            net[(cid, d)] += amount
    days = defaultdict(int)
    for (cid, _d), v in net.items():
        if round(v, 6) > 0:
            days[cid] += 1
    out = {cid: dict(row) for cid, row in want.items()}
    for cid, row in out.items():
        if days.get(cid, 0) > 1:
            p = float(got[cid]["p_alive"])
            row["churn_risk"] = "high" if p < cfg["churn_high"] else ("medium" if p < cfg["churn_medium"] else "low")
    return out
