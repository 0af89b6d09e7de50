"""Tests for cs_kpis, mirroring the package. Run with `make test`."""
