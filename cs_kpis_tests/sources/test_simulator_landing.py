"""Integration: the real simulator's tiny company loads through every source."""

from pathlib import Path

import pytest

from cs_kpis_tests.sources.conftest import Loader

simulator = pytest.importorskip("cs_kpis.simulator")


@pytest.mark.parametrize("bad_input", [False, True], ids=["clean", "bad_input"])
def test_tiny_company_loads(loader: Loader, tmp_path: Path, bad_input: bool) -> None:
    manifest = simulator.generate(
        tmp_path / "landing", tmp_path / "truth", size="tiny", seed=1, increments=2, bad_input=bad_input
    )
    totals = {}
    # every system loads its good rows, bad input included: before issue 15 the one ticket whose priority
    # is an integer stopped all of support
    for system in ("crm", "billing", "product", "nps", "support"):
        totals.update({(system, k): v for k, v in loader.run(system, tmp_path / "landing").items()})
    for key, counts in totals.items():
        assert counts.balanced, (key, counts)
    assert totals[("billing", "customers")].rows_loaded > 0
    assert totals[("product", "events")].rows_loaded > 0
    # every event in every received-day folder arrives once, not only the extract days' folders
    expected = loader.query(
        f"select count(distinct messageId) from read_json('{tmp_path}/landing/product/events/*/part-*.jsonl', "
        "format = 'newline_delimited', columns = {'messageId': 'VARCHAR'}, ignore_errors = true) "
        "where messageId is not null"
    )[0][0]
    assert loader.query("select count(*), count(distinct message_id) from raw.product__events")[0] == (
        expected,
        expected,
    )
    assert expected > 10_000
    accounts = loader.query("select count(distinct id) from raw.crm__accounts where _dlt_valid_to is null")[
        0
    ][0]
    assert accounts > 0 and manifest["extract_days"]
    # the table exists after a clean load too (empty)
    quarantined = set(loader.query("select distinct source, entity from raw._quarantine"))
    if bad_input:
        assert {
            ("billing", "customers"),
            ("billing", "invoices"),
            ("billing", "subscriptions"),
            ("crm", "accounts"),
            ("product", "events"),
            ("support", "tickets"),
        } <= quarantined
        assert loader.query("select field from raw._quarantine where entity = 'tickets'") == [("priority",)]
        assert totals[("support", "tickets")].rows_loaded > 0
    else:
        assert quarantined == set()
