"""Prepared rows to Arrow tables, so that dlt takes its Arrow path instead of its row path.

dlt normalizes Python dicts one row at a time (profiled on the demo's Stripe objects: more time than
reading and validating them); Arrow tables go through extract as parquet and are imported by normalize
as they are. The rows are the same :func:`cs_kpis.sources.common.helpers.flatten` output either way, and
the warehouse tables get the same columns and types as the row path gave them:

- a value that is a list or a dict (a vendor list, an empty object, a path kept whole) becomes JSON
  text with a ``json`` column hint, as dlt's row path stores it;
- ``_dlt_load_id`` and ``_dlt_id`` are added here (dlt adds them to Arrow tables only when the
  normalizer is configured to, and the row path always has them);
- a column whose numbers were whole in an earlier batch and are fractional now stops the load with an
  error naming the column, instead of a silent cast to the earlier BIGINT column; whole numbers in a
  column that was fractional are widened, as dlt's row path coerces them.
"""

import logging
from collections.abc import Callable
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa
from dlt.common.normalizers.utils import generate_dlt_ids

from cs_kpis.sources.common.helpers import SchemaTypeChange


class _QuietJsonHints(logging.Filter):
    """dlt warns on every batch that a ``json`` hint differs from the Arrow ``string`` type of a column;
    that difference is the point (JSON text loaded into a JSON column), so the warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


logging.getLogger("dlt").addFilter(_QuietJsonHints())

LOAD_ID = "_dlt_load_id"
ROW_ID = "_dlt_id"


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The columns of ``rows`` that hold a value somewhere (a key only ever None makes no column), each with
    its values (None where a row lacks it), in the order the first values appear: row by row, and within a
    row in its key order. Built column by column, which costs a fraction of visiting every field in Python;
    when every row has the same keys in the same order (a Stripe or Zendesk batch nearly always does), the
    values are transposed at once."""
    if not rows:
        return []
    shapes = set(map(tuple, rows))
    if len(shapes) == 1:
        columns = zip(next(iter(shapes)), map(list, zip(*map(dict.values, rows), strict=True)), strict=True)
    else:
        keys: dict[str, Any] = {}
        for row in rows:
            keys.update(row)  # the keys in first-seen order (the values are not used)
        columns = ((key, list(map(dict.get, rows, repeat(key)))) for key in keys)
    count = len(rows)
    found = []
    for key, values in columns:
        if values[0] is not None:
            first = 0
        elif values.count(None) == count:
            continue
        else:
            first = next(index for index, value in enumerate(values) if value is not None)
        found.append((first, key, values))
    if not found:
        return []
    order: dict[int, dict[str, int]] = {}
    for first, _, _ in found:
        if first not in order:
            order[first] = {key: place for place, key in enumerate(rows[first])}
    found.sort(key=lambda item: (item[0], order[item[0]][item[1]]))
    return [(key, values) for _, key, values in found]


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class ArrowRows:
    """Collect prepared rows of one table and hand them out as Arrow tables of ``batch_rows`` rows.

    ``known_types`` (column -> the Arrow type of its numbers) persists across batches, so a column that
    changes from whole to fractional numbers between batches is caught. ``load_id`` is None only when the
    resource is iterated outside a dlt pipeline (tests).
    """

    def __init__(self, table: str, load_id: str | None, batch_rows: int = 50_000,
                 stored_types: Callable[[str], pa.DataType | None] | None = None) -> None:
        self.table = table
        self.load_id = load_id
        self.batch_rows = batch_rows
        self.rows: list[dict[str, Any]] = []
        self.known_types: dict[str, pa.DataType] = {}
        self.json_columns: set[str] = set()
        self.stored_types = stored_types
        """column name -> the Arrow type of the warehouse's numeric column of that name (None: not stored): the
        first batch of a run is held to the warehouse's BIGINT as later batches are to the first one's"""

    def add(self, row: dict[str, Any]) -> pa.Table | None:
        """Add a row; returns a full batch when there is one to yield."""
        self.rows.append(row)
        if len(self.rows) >= self.batch_rows:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        """The rows collected so far as one table (None when there are none)."""
        if not self.rows:
            return None
        rows, self.rows = self.rows, []
        return self.to_table(rows)

    def to_table(self, rows: list[dict[str, Any]]) -> pa.Table:
        count = len(rows)
        arrays, names = [], []
        for name, values in _columns(rows):
            types = set(map(type, values))
            is_json = name in self.json_columns or any(issubclass(kind, dict | list) for kind in types)
            if is_json:
                self.json_columns.add(name)
            arrays.append(self._array(name, values, is_json))
            names.append(name)
        arrays.append(pa.array([self.load_id] * count, pa.string()))
        names.append(LOAD_ID)
        arrays.append(pa.array(generate_dlt_ids(count), pa.string()))
        names.append(ROW_ID)
        fields = [
            pa.field(name, array.type, nullable=name not in (LOAD_ID, ROW_ID))
            for name, array in zip(names, arrays, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _array(self, name: str, values: list[Any], is_json: bool) -> pa.Array:
        if is_json:
            # a column that holds a list or an object somewhere holds JSON text everywhere
            return pa.array([None if v is None else _json_text(v) for v in values], pa.string())
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaTypeChange(f"column {name!r} of {self.table} mixes types within one batch: {exc}") from None
        kind = array.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            known = self.known_types.get(name)
            if known is None and self.stored_types is not None:
                known = self.known_types[name] = self.stored_types(name) or kind
            if known is None:
                self.known_types[name] = kind
            elif pa.types.is_integer(known) and pa.types.is_floating(kind):
                whole = all(v is None or float(v).is_integer() for v in values)
                if not whole:
                    example = next(v for v in values if v is not None and not float(v).is_integer())
                    raise SchemaTypeChange(
                        f"field {name!r} of {self.table} changed type from whole numbers to fractional "
                        f"(value {example!r}); the warehouse column is BIGINT")
                array = array.cast(known)
            elif pa.types.is_floating(known) and pa.types.is_integer(kind):
                array = array.cast(known)
        return array

    def hints(self) -> dict[str, dict[str, Any]]:
        """Column hints for the JSON columns seen so far."""
        return {name: {"data_type": "json"} for name in sorted(self.json_columns)}


_ARROW_TYPES = {
    "text": pa.string(), "json": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
}


def empty_table(columns: dict[str, dict[str, Any]]) -> pa.Table:
    """A table without rows whose columns are the declared ``columns`` (dlt column hints) plus dlt's load and row
    ids, typed as :class:`ArrowRows` types the values: yielded to dlt, it creates the table with those columns.

    For an insert-only table (Stripe events), which ``dlt.mark.materialize_table_schema`` cannot create (dlt's
    normalizer hashes the primary key of its empty row and fails with ``KeyError``)."""
    fields = [pa.field(name, _ARROW_TYPES[hint["data_type"]]) for name, hint in columns.items()]
    fields += [pa.field(LOAD_ID, pa.string(), nullable=False), pa.field(ROW_ID, pa.string(), nullable=False)]
    return pa.schema(fields).empty_table()
