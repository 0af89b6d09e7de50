"""A plain merge table tells dlt that each load's rows are already deduplicated by primary key (the pass emits
one record per key), so dlt's merge skips its ``row_number()`` over the staging table; a child table,
deduplicated per parent rather than per row key, keeps dlt's pass (``Entity.load_disposition``)."""

from pathlib import Path

import duckdb

from cs_kpis.sources.billing import billing_source
from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis.sources.pipelines import make_pipeline
from cs_kpis_tests.landing_builder import write_landing
from cs_kpis_tests.sources.landing_builder import DAYS, invoice, tiny_company


def test_merge_tables_skip_dlts_dedup_and_load_one_row_per_key(tmp_path: Path) -> None:
    first, _, last = DAYS
    history = tiny_company()
    # invoice 1 three times in one load: twice on the first day, once more on the last; the last version loads
    history[first][("billing", "invoices")].append(invoice(1, 1, 1, first, amount_due=20000))
    history[last].setdefault(("billing", "invoices"), []).append(invoice(1, 1, 1, last, amount_due=30000))
    landing = write_landing(tmp_path / "landing", history)
    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = make_pipeline("billing", warehouse, tmp_path / "dlt")
    run_until_caught_up(pipeline, billing_source(landing_dir=landing).with_resources("invoices", "invoice_lines"))

    tables = pipeline.default_schema.tables
    assert tables["billing__invoices"].get("x-stage-data-deduplicated") is True
    assert tables["billing__invoices"].get("x-merge-strategy") == "delete-insert"
    assert not tables["billing__invoice_lines"].get("x-stage-data-deduplicated")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        invoices = con.execute("select id, amount_due from raw.billing__invoices order by id").fetchall()
        lines = con.execute("select id, amount, invoice from raw.billing__invoice_lines order by id").fetchall()
        # dlt's staging copies are emptied after the load (<pipeline>__LOAD__TRUNCATE_STAGING_DATASET, set by make_pipeline)
        staged = con.execute("select count(*) from raw_staging.billing__invoices").fetchone()[0]
        staged += con.execute("select count(*) from raw_staging.billing__invoice_lines").fetchone()[0]
    assert staged == 0
    assert invoices == [("in_00000000000001", 30000), ("in_00000000000002", 10000)]
    assert lines == [("il_00000000000001", 30000, "in_00000000000001"),
                     ("il_00000000000002", 10000, "in_00000000000002")]
