"""Tests of the dlt sources (no Dagster)."""
