"""Writing results: atomic staging, CSV/JSON rows, safe text, and the reports (xlsx, html)."""
