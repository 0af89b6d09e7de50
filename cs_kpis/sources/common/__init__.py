"""Pieces every cs_kpis dlt source shares: landing-folder reading, record validation, quarantine,
row accounting and the generic entity resource. No Dagster imports."""
