"""The whole build under a second profile: the tiny company's exports with every join key and custom field
renamed (cs_kpis_tests/renamed_profile.py), a company configuration naming them, every asset built; every
table of marts, kpis and alerts equals the demo profile's build of the original exports, row for row.

Slow (two whole builds of the tiny company, ~2 x 60 s quiet): `pytest -m slow`. The default suite keeps the
cheaper comparison through raw, staging and the account xref (staging/test_second_profile.py)."""

import time

import dagster as dg
import duckdb
import pytest

from cs_kpis_tests.renamed_profile import build_renamed_company, normalised
from cs_kpis_tests.tiny_build import build_tiny_company

COMPARED_SCHEMAS = ("marts", "kpis", "alerts")
# columns that record when or in which run a row was written, not what the data says
RUN_COLUMNS = {"built_at", "run_id", "logged_at", "created_at_run", "updated_at", "first_logged_at",
               "last_logged_at", "evaluated_at", "handed_at", "queued_at", "sent_at"}


def _tables(con) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema in "
        f"({', '.join(repr(s) for s in COMPARED_SCHEMAS)}) order by 1, 2").fetchall()]


def _rows(con, table: str, skipped: set | None = None) -> tuple[list[str], list[tuple]]:
    schema, name = table.split(".")
    every = [c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, name]).fetchall()]
    cols = [c for c in every if c not in RUN_COLUMNS]
    if skipped is not None:
        skipped |= {f"{table}.{c}" for c in every if c in RUN_COLUMNS}
    select = ", ".join(f'"{c}"' for c in cols)
    return cols, normalised(con.execute(f"select {select} from {table}").fetchall())


def _failed_error_checks(result) -> list[str]:
    return sorted(e.event_specific_data.check_name for e in result.all_events
                  if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
                  and e.event_specific_data.severity == dg.AssetCheckSeverity.ERROR)


@pytest.mark.slow
def test_every_marts_kpis_and_alerts_table_equals_the_demo_profile(tmp_path):
    started = time.monotonic()
    demo_env, demo = build_tiny_company(tmp_path / "demo", lambda k: True)
    demo_s = time.monotonic() - started
    paths, renamed_run, renamed = build_renamed_company(tmp_path / "renamed", demo_env.landing_dir)
    print(f"whole builds: demo profile {demo_s:.0f} s, renamed profile {time.monotonic() - started - demo_s:.0f} s")
    assert renamed_run.success, [e.message for e in renamed_run.all_events if e.is_step_failure]
    assert all(n > 0 for n in renamed.values()), renamed
    assert _failed_error_checks(renamed_run) == _failed_error_checks(demo) == []

    with duckdb.connect(str(demo_env.warehouse), read_only=True) as d, \
            duckdb.connect(str(paths["CS_KPIS_WAREHOUSE"]), read_only=True) as r:
        cols = {c for (c,) in r.execute("select column_name from information_schema.columns where table_schema = "
                                        "'raw' and table_name = 'crm__accounts'").fetchall()}
        assert "customer_success_manager__c" in cols and "csm__c" not in cols, "the renamed exports were loaded"
        tables = _tables(d)
        assert tables == _tables(r)
        assert len(tables) >= 30 and {t.split(".")[0] for t in tables} == set(COMPARED_SCHEMAS)
        different, compared_rows, skipped = [], 0, set()
        for table in tables:
            demo_cols, demo_rows = _rows(d, table, skipped)
            renamed_cols, renamed_rows = _rows(r, table)
            compared_rows += len(demo_rows)
            if (demo_cols, demo_rows) != (renamed_cols, renamed_rows):
                different.append(f"{table}: {len(demo_rows)} demo rows, {len(renamed_rows)} renamed-profile rows")
        print(f"{len(tables)} tables, {compared_rows} rows compared; run-time columns left out: {sorted(skipped)}")
    assert different == []
    for key in ("marts.accounts", "kpis.revenue_monthly", "kpis.health_scores_daily", "alerts.alert_log"):
        assert key in tables
