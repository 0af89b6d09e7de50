"""Dagster objects, one folder per layer in data-flow order; loaded by cs_kpis.definitions."""
