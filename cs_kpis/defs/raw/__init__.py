"""Layer 1: raw tables loaded by dlt from the landing folder (or the vendor APIs) into DuckDB."""
