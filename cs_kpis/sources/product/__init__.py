"""The ``product`` dlt source: Segment events, loaded set-based by DuckDB, state and quarantine by dlt.

Row-by-row dlt manages ~2k-12k events/s here; a 2M-event day would take minutes. So the ``events``
resource inserts the received days straight from DuckDB ``read_json`` into ``raw.product__events``
(deduplicated on messageId within the batch and against the table right after the insert commits), inside the
same DuckDB warehouse the pipeline loads (with the filesystem destination: the same SQL in an in-memory
DuckDB, the new rows written to the lake as one Parquet file per load, :func:`_events_table`). dlt still owns
the resource state (last extract day loaded), the quarantine rows and the accounting rows, which load with the
pipeline as usual.

The events commit during extract, before dlt commits the state that says they are loaded: rows of a run
killed in between carry a load id that never reaches ``_dlt_loads``, and
:func:`cs_kpis.sources.common.runner.discard_incomplete_loads` deletes them before the rerun loads the
same days again.
"""

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb

from cs_kpis.sources import lake
from cs_kpis.sources.common.accounting import Accounting
from cs_kpis.sources.common.bookkeeping import (
    accounting_row,
    bookkeeping_tables,
    with_accounting_hints,
    with_quarantine_hints,
)
from cs_kpis.sources.common.contract import landing_window
from cs_kpis.sources.common.entity import lazy_api_reader
from cs_kpis.sources.common.landing import extract_days, pending_days
from cs_kpis.sources.product import files, helpers, settings
from cs_kpis.sources.product.loader import load_day

_api_reader = lazy_api_reader("cs_kpis.sources.product.api")


def _quarantine(origin: str, position: int | None, raw_text: str, reason: str, day: str | None) -> Any:
    words = set(re.findall(r"\w+", reason))
    field = next((f for f in (settings.PRIMARY_KEY, *settings.TIMESTAMP_FIELDS) if f in words), None)
    return with_quarantine_hints({
        "source": settings.SYSTEM, "entity": settings.ENTITY, "origin": origin, "position": position,
        "field": field, "reason": reason, "records": 1, "raw_text": raw_text, "extract_day": date.fromisoformat(day) if day else None,
        "loaded_at": datetime.now(UTC),
    })


def events_resource(landing_dir: Path | None, mode: str, api_config: Any, max_days: int | None) -> Any:
    """The ``events`` resource; loads into the pipeline's own DuckDB dataset."""
    window = landing_window(landing_dir)

    @dlt.resource(name=settings.ENTITY, table_name=settings.TABLE, write_disposition="append")
    def events() -> Any:
        pipeline = dlt.current.pipeline()
        if pipeline.destination is None or pipeline.destination.destination_name not in ("duckdb", "filesystem"):
            raise NotImplementedError("product events load set-based through DuckDB into the DuckDB warehouse or "
                                      "a filesystem lake; other destinations are not supported")
        state = dlt.current.resource_state()
        load_id = dlt.current.load_package_state()["load_id"]
        counts = Accounting()
        days: list[str] = []
        with _events_table(pipeline, load_id) as (con, table):
            if mode == "files":
                all_days = extract_days(landing_dir)
                days = pending_days(all_days, state.get("last_extract_day"), max_days)
                previous = state.get("last_extract_day")
                for day in days:
                    # the extract day covers the received-day folders since the previous one, loaded in
                    # batches so that each set-based insert stays a bounded size
                    folders = files.received_days(landing_dir, previous, day)
                    for paths in files.batches(landing_dir, folders, settings.BATCH_BYTES):
                        result = load_day(con, table, paths, received_day=None,
                                          origin_prefix=f"{landing_dir}/", load_id=load_id, window=window())
                        counts = counts.add(result.counts)
                        # events are committed, dlt's state for them is not (it commits with the package)
                        for origin, position, raw_text, reason in result.bad_rows:
                            yield _quarantine(origin.replace(f"{landing_dir}/", ""), position, raw_text, reason, day)
                    previous = day
                state["last_extract_day"] = days[-1] if days else state.get("last_extract_day")
                state["pending_days"] = len(pending_days(all_days, state.get("last_extract_day")))
            elif mode == "api":
                counts, bad = _load_from_api(con, table, api_config, state, load_id, window())
                for origin, position, raw_text, reason in bad:
                    yield _quarantine(origin, position, raw_text, reason, None)
            else:
                raise ValueError(f"mode must be 'files' or 'api', got {mode!r}")
        state["last_run"] = {**counts.as_dict(), "extract_days": days}
        if counts.rows_read:
            yield with_accounting_hints(accounting_row(settings.SYSTEM, settings.ENTITY, counts, days))

    return bookkeeping_tables(events)


@contextmanager
def _events_table(pipeline: Any, load_id: str) -> Iterator[tuple[Any, str]]:
    """(DuckDB connection, events table) the fast path inserts into.

    DuckDB destination: ``raw.product__events`` in the warehouse itself. Filesystem destination (a lake,
    ``cs_kpis/sources/lake.py``): the same SQL runs in an in-memory DuckDB whose table holds the lake's
    earlier events' keys (``message_id``, ``_origin``, load id: what the deduplication reads), and this
    load's new rows are written to ``<lake>/dlt/raw/product__events/<load_id>.events.parquet`` when the
    extract ends; a load that never completes has that file deleted before the next one."""
    if not lake.is_lake(pipeline):
        with pipeline.sql_client() as client:
            con = client.native_connection
            dataset = client.fully_qualified_dataset_name()
            table = f"{dataset}.{settings.TABLE}"
            con.execute(f"create schema if not exists {dataset}")
            con.execute(helpers.create_table_sql(table))
            yield con, table
        return
    folder = Path(pipeline.destination.config_params["bucket_url"]) / pipeline.dataset_name / settings.TABLE
    folder.mkdir(parents=True, exist_ok=True)
    earlier = sorted(str(p) for p in folder.glob("*.parquet"))
    with duckdb.connect() as con:
        table = settings.TABLE
        con.execute(helpers.create_table_sql(table))
        if earlier:
            con.execute(f"insert into {table} (message_id, _origin, _dlt_load_id) "
                        f"select message_id, _origin, _dlt_load_id from read_parquet({earlier!r})")
        yield con, table
        new = con.execute(f"select count(*) from {table} where _dlt_load_id = ?", [load_id]).fetchone()[0]
        if new or not earlier:  # the first load writes a file even when empty: the table exists from then on
            out = folder / f"{load_id}.events.parquet"
            con.execute(f"copy (select * from {table} where _dlt_load_id = {helpers.sql_literal(load_id)}) "
                        f"to '{out}' (format parquet)")


def _load_from_api(
    con: Any, table: str, api_config: Any, state: dict, load_id: str, window: Any = None
) -> tuple[Accounting, list]:
    """API mode: spool the reader's records to one JSON-lines file, then load it like a landing day."""
    reader = _api_reader()
    origins: list[tuple[str, int]] = []
    max_received: str | None = None
    with tempfile.TemporaryDirectory() as tmp:
        spool = Path(tmp) / "events.jsonl"
        with spool.open("w") as handle:
            for record in reader(api_config, settings.ENTITY, state.get("api_since")):
                text = json.dumps(record.obj) if record.obj is not None else (record.raw_text or "").replace("\n", " ")
                handle.write(text + "\n")
                origins.append((record.origin, record.position))
                received = (record.obj or {}).get("receivedAt")
                if isinstance(received, str) and (max_received is None or received > max_received):
                    max_received = received
        today = datetime.now(UTC).date().isoformat()
        result = load_day(con, table, [str(spool)] if origins else [], received_day=today,
                          origin_prefix=f"{tmp}/", load_id=load_id, window=window)
    bad = [(*origins[position], raw, reason) for _, position, raw, reason in result.bad_rows]
    if max_received:
        state["api_since"] = int(datetime.fromisoformat(max_received).timestamp())
    return result.counts, [(origin, position, raw, reason) for origin, position, raw, reason in bad]


@dlt.source(name="product", schema_contract={"tables": "evolve", "columns": "evolve", "data_type": "freeze"})
def product_source(
    landing_dir: Path | str | None = None, mode: str = "files", api_config: Any = None, max_days: int | None = None
) -> Any:
    """Segment events from ``product/events/<received_day>/`` (or the API) into ``product__events``."""
    return events_resource(Path(landing_dir) if landing_dir else None, mode, api_config, max_days)
