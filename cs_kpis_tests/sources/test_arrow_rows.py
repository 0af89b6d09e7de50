"""Entities reach dlt as Arrow tables (cs_kpis/sources/common/arrow_rows.py): these tests pin that the
warehouse gets the columns, types and values dlt's row path gave, and that a numeric column turning
fractional between batches stops the load instead of being cast silently."""

from datetime import UTC, date, datetime

import dlt
import duckdb
import pyarrow as pa
import pytest

from cs_kpis.sources.common.arrow_rows import LOAD_ID, ROW_ID, ArrowRows
from cs_kpis.sources.common.helpers import SchemaTypeChange

ROWS = [
    {"id": "a", "n": 1, "amount": 2.5, "ok": True, "created": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
     "day": date(2025, 1, 2), "tags": ["x", "y"], "metadata": {}, "nested__key": "v"},
    {"id": "b", "n": None, "amount": 3.0, "ok": False, "created": None, "day": None,
     "tags": [], "metadata": {"k": [1, {"z": None}]}, "late": "only here"},
]


def _load(tmp_path, rows, *, arrow: bool):
    """Load ``rows`` once as dicts (dlt's row path) or once through ArrowRows; return column types and rows."""
    name = "arrow" if arrow else "rows"

    @dlt.resource(name="things", table_name="sys__things", primary_key=["id"], write_disposition="merge",
                  max_table_nesting=0, columns={"gone": {"data_type": "timestamp", "nullable": True}})
    def things():
        if not arrow:
            yield from (dict(r) for r in rows)
            return
        batcher = ArrowRows("sys__things", dlt.current.load_package_state()["load_id"], batch_rows=1)
        for row in rows:
            if (table := batcher.add(dict(row))) is not None:
                yield dlt.mark.with_hints(table, dlt.mark.make_hints(columns=batcher.hints()))

    path = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(pipeline_name=name, pipelines_dir=str(tmp_path / f"dlt_{name}"),
                            destination=dlt.destinations.duckdb(str(path)), dataset_name="raw")
    pipeline.run(things(), loader_file_format="parquet")
    con = duckdb.connect(str(path), read_only=True)
    types = dict(con.execute(
        "select column_name, data_type from duckdb_columns() where schema_name = 'raw' and table_name = 'sys__things'"
    ).fetchall())
    names = sorted(k for k in types if k not in (LOAD_ID, ROW_ID))
    select = ", ".join(f"json({n})::varchar" if types[n] == "JSON" else n for n in names)
    values = con.execute(f"select {select} from raw.sys__things order by id").fetchall()
    nulls = con.execute(f"select count(*) from raw.sys__things where {LOAD_ID} is null or {ROW_ID} is null").fetchall()
    con.close()
    return types, names, values, nulls[0][0]


def test_arrow_batches_load_like_dlt_row_path(tmp_path):
    row_types, row_names, row_values, _ = _load(tmp_path, ROWS, arrow=False)
    arrow_types, arrow_names, arrow_values, missing_ids = _load(tmp_path, ROWS, arrow=True)
    assert arrow_types == row_types
    assert arrow_names == row_names
    assert arrow_values == row_values
    assert missing_ids == 0
    # what the comparison covers: JSON for lists and objects, typed timestamps, the hinted empty column
    assert arrow_types["tags"] == arrow_types["metadata"] == "JSON"
    assert arrow_types["created"] == arrow_types["gone"] == "TIMESTAMP WITH TIME ZONE"
    assert arrow_types["day"] == "DATE" and arrow_types["n"] == "BIGINT" and arrow_types["amount"] == "DOUBLE"


def test_whole_numbers_then_fractional_ones_stop_the_load():
    batcher = ArrowRows("sys__things", "1", batch_rows=2)
    assert batcher.add({"id": "a", "qty": 1}) is None
    first = batcher.add({"id": "b", "qty": 2})
    assert first.schema.field("qty").type == pa.int64()
    batcher.add({"id": "c", "qty": 3.5})
    with pytest.raises(SchemaTypeChange, match="'qty' of sys__things changed type from whole numbers to fractional"):
        batcher.add({"id": "d", "qty": 4})


def test_whole_values_keep_the_earlier_type_of_their_column():
    batcher = ArrowRows("sys__things", "1", batch_rows=1)
    assert batcher.add({"id": "a", "qty": 1.5}).schema.field("qty").type == pa.float64()
    # later whole numbers widen to the column's double; a whole double stays a bigint column
    assert batcher.add({"id": "b", "qty": 2}).schema.field("qty").type == pa.float64()
    assert batcher.add({"id": "c", "count": 3}).schema.field("count").type == pa.int64()
    table = batcher.add({"id": "d", "count": 4.0})
    assert table.schema.field("count").type == pa.int64() and table.column("count").to_pylist() == [4]


def test_a_column_once_json_stays_json_text():
    batcher = ArrowRows("sys__things", "load-1", batch_rows=1)
    batcher.add({"id": "a", "meta": {"k": 1}})
    table = batcher.add({"id": "b", "meta": "plain"})
    assert table.column("meta").to_pylist() == ['"plain"']  # valid JSON for the JSON column
    assert batcher.hints() == {"meta": {"data_type": "json"}}
    assert table.column(LOAD_ID).to_pylist() == ["load-1"]
    assert not table.schema.field(ROW_ID).nullable


def test_mixed_types_in_one_batch_name_the_column():
    batcher = ArrowRows("sys__things", "1", batch_rows=2)
    batcher.add({"id": "a", "v": "text"})
    with pytest.raises(SchemaTypeChange, match="column 'v' of sys__things mixes types"):
        batcher.add({"id": "b", "v": 1})


def test_columns_come_in_first_value_order_whether_rows_share_their_keys_or_not():
    def columns(rows):
        table = ArrowRows("sys__things", None).to_table(rows)
        return [(name, table.column(name).to_pylist()) for name in table.column_names[:-2]]

    same = [{"a": None, "b": 1, "c": None}, {"a": 2, "b": None, "c": None}]  # one shape: transposed at once
    assert columns(same) == [("b", [1, None]), ("a", [None, 2])]  # c never holds a value: no column
    mixed = [{"a": None, "b": 1}, {"c": None, "a": 2}, {"d": 3}]  # keys differ: column by column
    assert columns(mixed) == [("b", [1, None, None]), ("a", [None, 2, None]), ("d", [None, None, 3])]
