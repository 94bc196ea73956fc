"""The tier outlook part of the reports (SPEC §3): customers by tier -> predicted tier (the
predicted revenue of the next 365 days against the tier bounds), and the largest upgrade and
downgrade candidates. Plain data; None when the run has no predicted tiers."""

from __future__ import annotations

from typing import Any

import polars as pl

from segkit.config import Tier
from segkit.models.outlook import outlook
from segkit.outputs.report.labels import Names


def outlook_section(doc: dict[str, Any], customers: pl.DataFrame, tiers: tuple[Tier, ...], names: Names,
                    top_n: int) -> dict[str, Any] | None:
    o = doc.get("outlook") or {}
    if not o.get("available"):
        return None
    labels = [names.tier(code) for code in o["tiers"]]
    cands = outlook(customers, tiers)

    def top(direction: str) -> list[dict[str, Any]]:
        rows = cands.filter(pl.col("direction") == direction).head(top_n)
        return [{"id": r["customer_id"], "name": r.get("customer_name") or "", "tier": names.tier(r["tier"]),
                 "predicted_tier": names.tier(r["predicted_tier"]), "p_alive": r["p_alive"],
                 "predicted_revenue": r["predicted_revenue"], "annual_spend": r["annual_spend"]}
                for r in rows.iter_rows(named=True)]

    return {"upgrade": o["upgrade"], "downgrade": o["downgrade"], "same": o["same"],
            "columns": labels, "rows": [{"name": name, "counts": counts} for name, counts in zip(labels, o["matrix"])],
            "up": top("up"), "down": top("down")}
