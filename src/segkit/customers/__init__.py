"""Per-customer steps after the engine: windows, metrics (RFM, lifecycle, churn), tiers, date coverage, warnings, migration, and float sums that do not depend on row order."""
