"""Per-customer steps after the engine: windows, metrics (RFM, lifecycle, churn), tiers, date coverage, warnings, migration."""
