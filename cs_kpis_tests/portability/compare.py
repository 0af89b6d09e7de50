"""Rows from two engines, normalised so equal data compares equal and different data does not.

Sorted rows; decimals exact; doubles within 1e-9 (relative or absolute); dates and timestamps as ISO strings
(timestamps in UTC); JSON text compared parsed; lists and structs element by element.
"""

import datetime as dt
import json
import math
from decimal import Decimal

import pyarrow as pa

TOL = 1e-9


def _json(value: str):
    text = value.strip()
    if text[:1] in ("{", "[") or text in ("null", "true", "false"):
        try:
            return ("json", json.loads(text))
        except ValueError:
            pass
    return value


def normalise(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _json(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def rows(table: pa.Table) -> list[list]:
    """Normalised rows, sorted."""
    out = [[normalise(v) for v in row.values()] for row in table.to_pylist()]
    return sorted(out, key=_sort_key)


def _sort_key(row):
    return [_key(v) for v in row]


def _key(v):
    if v is None:
        return (0, "")
    if isinstance(v, bool):
        return (1, str(v))
    if isinstance(v, int | float | Decimal):
        return (1, f"{float(v):+.6e}") if not (isinstance(v, float) and math.isnan(v)) else (1, "nan")
    return (2, json.dumps(v, sort_keys=True, default=str))


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return math.isclose(float(a), float(b), rel_tol=TOL, abs_tol=TOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, tuple) and isinstance(b, tuple):  # parsed JSON
        return same(list(a), list(b))
    return a == b


def differences(duck: pa.Table, spark: pa.Table, limit: int = 5) -> list[str]:
    """What differs, in words (empty when the two results are equal)."""
    if duck.column_names != spark.column_names:
        return [f"columns differ: duckdb {duck.column_names} / spark {spark.column_names}"]
    if duck.num_rows != spark.num_rows:
        return [f"row counts differ: duckdb {duck.num_rows} / spark {spark.num_rows}"]
    out = []
    names = duck.column_names
    for i, (a, b) in enumerate(zip(rows(duck), rows(spark), strict=True)):
        cols = [n for n, x, y in zip(names, a, b, strict=True) if not same(x, y)]
        if cols:
            out.append(f"sorted row {i}: " + "; ".join(
                f"{n}: duckdb {x!r} / spark {y!r}" for n, x, y in zip(names, a, b, strict=True) if n in cols))
            if len(out) >= limit:
                break
    return out
