"""Measure the product events load against DuckDB's own read_json on the same files.

    .venv/bin/python -m cs_kpis_tests.sources.bench_events <landing_dir> <received_day> [--arrow]

``--arrow`` also measures the alternative: the same DuckDB query yielded to dlt as Arrow batches
(loader_file_format parquet), which keeps everything inside dlt but is slower.
"""

import sys
import tempfile
import time
from pathlib import Path

import dlt
import duckdb

from cs_kpis.sources.common.runner import run_until_caught_up
from cs_kpis.sources.product import helpers, product_source
from cs_kpis.sources.product.files import day_files


def _pipeline(name: str, tmp: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        name,
        destination=dlt.destinations.duckdb(credentials=str(tmp / f"{name}.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(tmp / "dlt"),
    )


def main(landing: str, day: str, arrow: bool = False) -> None:
    files = [str(p) for p in day_files(landing, day)]
    size = sum(Path(f).stat().st_size for f in files)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        con = duckdb.connect()
        started = time.perf_counter()
        rows = con.execute(
            f"select count(*) from read_json({helpers.file_list(files)}, format='newline_delimited')"
        ).fetchall()[0][0]
        bare = time.perf_counter() - started
        con = duckdb.connect(str(tmp / "ctas.duckdb"))
        started = time.perf_counter()
        con.execute(
            f"create table t as select * from read_json({helpers.file_list(files)}, format='newline_delimited')"
        )
        ctas = time.perf_counter() - started
        con.close()
        print(f"{rows:,} events in {len(files)} files, {size / 1e6:,.0f} MB")
        print(f"duckdb read_json count(*):       {bare:6.2f}s  {rows / bare:>12,.0f} rows/s")
        print(f"duckdb read_json into a table:   {ctas:6.2f}s  {rows / ctas:>12,.0f} rows/s")

        pipeline = _pipeline("bench_direct", tmp)
        started = time.perf_counter()
        _, totals = run_until_caught_up(pipeline, product_source(landing_dir=landing))
        direct = time.perf_counter() - started
        print(
            f"product source (dlt run, direct DuckDB insert): {direct:6.2f}s  {rows / direct:>12,.0f} rows/s  {totals['events'].as_dict()}"
        )

        if arrow:

            @dlt.resource(name="events", table_name="product__events", write_disposition="append")
            def arrow_events():
                con = duckdb.connect()
                con.execute(helpers.stage_fast_sql(files))
                reader = con.sql(f"select * exclude (_raw, _position) from {helpers.STAGE}").to_arrow_reader(
                    500_000
                )
                yield from reader

            pipeline = _pipeline("bench_arrow", tmp)
            started = time.perf_counter()
            pipeline.run(arrow_events(), loader_file_format="parquet")
            took = time.perf_counter() - started
            print(f"dlt arrow path (no dedup/quarantine): {took:6.2f}s  {rows / took:>12,.0f} rows/s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--arrow" in sys.argv)
