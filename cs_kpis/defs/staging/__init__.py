"""Layer 2: staging models, one per raw table, renamed and cast; no joins, no aggregations (README.md)."""
