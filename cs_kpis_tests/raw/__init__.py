"""Tests of the raw layer Dagster wiring."""
