"""Simulated companies shared across the simulator tests (generated once per session, in tmp dirs)."""

from pathlib import Path

import pytest

from cs_kpis.simulator import generate


@pytest.fixture(scope="session")
def tiny_company(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate(root / "landing", root / "truth", size="tiny", seed=7)
    return root


@pytest.fixture(scope="session")
def demo_company(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    # the whole event history: the ground truth is recomputed independently from the full Stripe ledger
    generate(root / "landing", root / "truth", size="demo", seed=42, event_retention_days=0)
    return root
