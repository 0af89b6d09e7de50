"""The SQL fast path of a files-mode pass (issue 18): DuckDB reads a part file once typed, checks the entity's
contract and the JSON types in SQL, flattens the records (and their child list) into Arrow tables, and the records
never become Python objects. (A first version checked with JSON functions over the text, each call parsing it
again: commit 6477cb4, slower; BENCHMARKS.md, issue 18 session 18.) A part it cannot prove clean comes back as None and goes through the Python path
(:mod:`cs_kpis.sources.common.steps`), so quarantine rows and messages stay as they are.

"Clean" is conservative: every record an object, every declared field fits its contract (as strictly as
:class:`cs_kpis.sources.common.contract.Contract` or more), every field of the part has one JSON type that agrees
with the types learned so far (``field_types`` in resource state), every flattened number a whole number that
fits BIGINT, every vendor key a plain name, and every JSON text free of what DuckDB writes differently from orjson
(exponents, long digit runs). Anything else goes to the Python path.

Known gap (documented in BENCHMARKS.md, issue 18 session 18): duplicate keys inside nested objects are not
detected (orjson keeps the last value, DuckDB the first); duplicate top-level keys are.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cs_kpis.sources.common.contract import Contract, Field, unix_bounds

log = logging.getLogger(__name__)

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_INT_TYPES = ("BIGINT", "UBIGINT")
_CATEGORY = {"VARCHAR": "text", "BOOLEAN": "bool", "BIGINT": "number", "UBIGINT": "number", "DOUBLE": "number"}
_JSON_DIFFERS = r"[:,\[]-?([0-9]{16,}|0\.0000|[0-9]+(\.[0-9]+)?[eE])"
"""in a JSON text DuckDB writes: a number it may format unlike orjson, which writes an exponent from 1e16 and
below 1e-5 (``1e+16`` where DuckDB writes ``10000000000000000.0``, ``8e-6`` for ``0.000008``); checked on 5,000
doubles of every magnitude, every difference matched it (a string that looks alike sends the part to Python)"""


class NotClean(Exception):
    """The part cannot be proven clean: the Python path reads it."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(steps: list[str]) -> str:
    return "$" + "".join(f".{step}" for step in steps)


@dataclass
class PartResult:
    """One clean part: its record count, each record's key, and the rows (all records, in order) of the
    parent table and of the child table (with ``_pos``, the parent record's position)."""

    records: int
    keys: list[Any]
    parent: pa.Table
    child: pa.Table | None
    child_counts: list[int]
    parent_types: dict[str, str]
    """path -> JSON category the type check would learn from the part's records"""
    json_columns: frozenset[str]
    """the columns of either table that hold JSON text"""


class SqlParts:
    """The SQL validation and flattening of one entity's parts, for a parent with at most one child list."""

    def __init__(self, *, list_key: str, contract: Contract, json_paths: frozenset[str], unix_fields: tuple[str, ...],
                 primary_key: str, child_list: str | None = None, foreign_key: str | None = None,
                 child_unix_fields: tuple[str, ...] = ()) -> None:
        self.list_key = list_key
        self.contract = contract
        self.json_paths = json_paths
        self.unix_fields = frozenset(unix_fields)
        self.primary_key = primary_key
        self.child_list = child_list
        self.foreign_key = foreign_key
        self.child_unix_fields = frozenset(child_unix_fields)
        window = contract.window() if callable(contract.window) else contract.window
        self._bounds = unix_bounds(window)
        """the date window as Unix seconds, for the contract's ``unix`` fields"""
        self.con = duckdb.connect(config={"threads": 1, "memory_limit": "2GB"})
        self.con.execute("SET TimeZone='UTC'")

    # ---- a part ------------------------------------------------------------------------------------------

    def read(self, path: Path) -> PartResult | None:
        """The part's rows when it is provably clean, else None (the Python path reads it)."""
        try:
            return self._read_typed(path)
        except (NotClean, duckdb.Error):
            return None
        finally:
            for name in ("t", "x", "ti", "xi", "xv"):
                self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def _read_typed(self, path: Path) -> PartResult:
        """The part from one typed ``read_json`` (DuckDB parses each record once and infers one type per field,
        JSON where records disagree: the type check) and one text read for what must stay JSON text (lists, empty
        objects, the child list whole) and for duplicate keys: the contract and the flattened columns read typed
        values."""
        con = self.con
        with path.open("rb") as handle:
            if handle.read(1) != b"{":
                raise NotClean("not a plain envelope")
        con.execute(f"""
            CREATE TEMP TABLE t AS SELECT unnest({self.list_key}) AS r, unnest(range(len({self.list_key}))) AS pos
            FROM read_json(?, format='unstructured', sample_size=-1, dateformat='%d/%m/%Y@@never',
                           timestampformat='%d/%m/%Y@@never', maximum_object_size=67108864)""", [str(path)])
        count = con.execute("SELECT count(*) FROM t").fetchone()[0]
        if count == 0:
            raise NotClean("no records")
        record_type = con.sql("SELECT r FROM t LIMIT 0").types[0]
        if record_type.id != "struct":
            raise NotClean("records that are not objects")
        structure = _structure(record_type)
        # the text of every record, for duplicate keys, empty objects and the JSON text columns
        con.execute(f"""
            CREATE TEMP TABLE x AS SELECT unnest(l) AS j, unnest(range(len(l))) AS pos
            FROM (SELECT json_extract(content::JSON, {_quote('$.' + self.list_key + '[*]')}) AS l FROM read_text(?))""",
                    [str(path)])
        if con.execute("SELECT count(*) FROM x").fetchone()[0] != count:
            raise NotClean("the text read differs")
        # a number DuckDB writes unlike orjson is written with an exponent, 16 digits or more, or 0.0000 in the
        # part itself: without one anywhere in the part, no JSON text column needs the test
        self._differs_possible = con.execute(f"SELECT regexp_matches(content, '{_JSON_DIFFERS}') FROM read_text(?)",
                                             [str(path)]).fetchone()[0]
        checks = [_typed_check("r", structure, path_.split("."), spec, self, 0)
                  for path_, spec in self.contract.fields.items()]
        types: dict[str, str] = {}
        _categories({k: v for k, v in structure.items() if k != self.child_list}, "", self.json_paths, types)
        parent_columns: dict[str, tuple[list[str], set[str]]] = {}
        _columns(structure, [], self.json_paths | {self.child_list} - {None}, parent_columns)
        item_structure = None
        if self.child_list is not None:
            envelope = structure.get(self.child_list)
            if isinstance(envelope, dict):
                _categories({f"{self.child_list}{{}}": {k: v for k, v in envelope.items() if k != "data"}}, "",
                            frozenset(), types)
                items = envelope.get("data")
                if isinstance(items, list) and isinstance(items[0], dict):
                    item_structure = items[0]
                elif items not in (None, "NULL") and not (isinstance(items, list) and items[0] == "NULL"):
                    raise NotClean("child list elements that are not objects")
            elif envelope not in (None, "NULL"):
                raise NotClean("child list is not an object")
        if con.execute(f"SELECT count(*) FROM t WHERE NOT coalesce({' AND '.join(checks)}, false)").fetchone()[0]:
            raise NotClean("records fail the contract")
        parent = self._flatten_typed("t", "x", "r", parent_columns, self.unix_fields, count)
        keys = parent.column(self.primary_key).to_pylist() if self.primary_key in parent.column_names else None
        if keys is None or any(k is None for k in keys):
            raise NotClean("key missing")
        keys = [(k,) for k in keys]
        child, child_counts = None, []
        if self.child_list is not None:
            child_columns: dict[str, tuple[list[str], set[str]]] = {}
            if item_structure is not None:
                _categories({f"{self.child_list}[]": item_structure}, "", frozenset(), types)
                with_key = item_structure if self.foreign_key in item_structure else {**item_structure,
                                                                                       self.foreign_key: "VARCHAR"}
                _columns(with_key, [], frozenset(), child_columns)
            child_columns[self.foreign_key] = ([self.foreign_key], {"FOREIGN"})
            data = f"struct_extract(struct_extract(r, {_quote(self.child_list)}), 'data')"
            con.execute(f"""
                CREATE TEMP TABLE ti AS SELECT pos, struct_extract(r, {_quote(self.primary_key)}) AS parent_key,
                       unnest({data}) AS r, unnest(range(len({data}))) AS idx FROM t""")
            con.execute(f"""
                CREATE TEMP TABLE xi AS SELECT pos, unnest(l) AS j, unnest(range(len(l))) AS idx
                FROM (SELECT pos, json_extract(j, {_quote('$.' + self.child_list + '.data[*]')}) AS l FROM x)""")
            child = self._flatten_typed("ti", "xi", "r", child_columns, self.child_unix_fields,
                                        con.execute("SELECT count(*) FROM ti").fetchone()[0], child=True)
            child_counts = [0] * count
            for pos in child.column("pos").to_pylist():
                child_counts[pos] += 1
        return PartResult(count, keys, parent, child, child_counts, types, frozenset(self._json))

    def _flatten_typed(self, typed: str, text: str, record: str, columns: dict[str, tuple[list[str], set[str]]],
                       unix_fields: frozenset[str], count: int, child: bool = False) -> pa.Table:
        """The flattened columns of ``typed``'s records (:meth:`_flatten`'s names and types): scalars from the typed
        values, JSON text and empty objects from ``text`` (the same records' text, matched by position)."""
        keys = "pos, idx" if child else "pos"
        selects = ["t.pos"] if child else []
        checks, paths = [], []
        if not child:
            self._json = set()
        for name, (steps, kinds) in columns.items():
            kinds = kinds - {"NULL"}
            if kinds == {"FOREIGN"}:
                selects.append(f"t.parent_key AS \"{name}\"")
                continue
            if not kinds:
                continue
            typed_value = "t." + record
            for step in steps:
                typed_value = f"struct_extract({typed_value}, {_quote(step)})"
            dotted = ".".join(steps)
            if kinds <= {"JSON_TEXT"}:
                paths.append(_json_path(steps))
                value = f"v[{len(paths)}]"
                text_value = f"CASE WHEN json_type({value}) = 'NULL' THEN NULL ELSE ({value})::VARCHAR END"
                selects.append(f"{text_value} AS \"{name}\"")
                self._json.add(name)
                if self._differs_possible:
                    checks.append(f"coalesce(regexp_matches({text_value}, '{_JSON_DIFFERS}'), false)")
                continue
            if kinds == {"EMPTY"}:
                # an object empty in every record (a map without keys): ``{}`` where it is not null
                if self.con.execute(f"SELECT count(*) FROM {typed} t WHERE cardinality({typed_value}) > 0"
                                    ).fetchone()[0]:
                    raise NotClean(f"{dotted}: an object with keys DuckDB read as a map")
                selects.append(f"CASE WHEN {typed_value} IS NOT NULL THEN '{{}}' END AS \"{name}\"")
                self._json.add(name)
                continue
            if kinds == {"OBJECT"}:
                # a flattened object: its own column holds ``{}`` where a record has it empty
                paths.append(_json_path(steps))
                selects.append(f"CASE WHEN (v[{len(paths)}])::VARCHAR = '{{}}' THEN '{{}}' END AS \"{name}\"")
                self._json.add(name)
                continue
            if kinds <= set(_INT_TYPES):
                number = f"({typed_value})::BIGINT"
                selects.append(f"{'to_timestamp(' + number + ')' if dotted in unix_fields else number} AS \"{name}\"")
                continue
            if dotted in unix_fields:
                raise NotClean(f"{dotted}: Unix seconds that are not whole")
            if kinds == {"VARCHAR"} or kinds == {"BOOLEAN"}:
                selects.append(f"{typed_value} AS \"{name}\"")
                continue
            raise NotClean(f"column {name} holds {sorted(kinds)}")
        # duplicate keys (orjson keeps the last, DuckDB's typed read the first) in the record
        checks.append("len(json_keys(x.j)) <> len(list_distinct(json_keys(x.j)))")
        extract = f"json_extract(x.j, [{', '.join(_quote(p) for p in paths)}])" if paths else "[]::JSON[]"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE xv AS SELECT {keys}, j, {extract} AS v FROM {text} x")
        join = " AND ".join(f"x.{k} = t.{k}" for k in keys.split(", "))
        out = self.con.sql(f"SELECT {', '.join(selects)}, {' OR '.join(checks)} AS _differs "
                           f"FROM {typed} t JOIN xv x ON {join} ORDER BY {', '.join('t.' + k for k in keys.split(', '))}"
                           ).to_arrow_table()
        if out.num_rows != count:
            raise NotClean("typed and text records do not match")
        if out.column("_differs").to_pylist().count(True):
            raise NotClean("JSON text that DuckDB writes unlike orjson, or duplicate keys")
        return out.drop_columns(["_differs"])



def _structure(kind: Any) -> Any:
    """A DuckDB type of the typed read as :func:`_categories` and :func:`_columns` read it: an object's fields, ``[element]`` for a list, a type name for a scalar, ``JSON`` for an object DuckDB read as a
    map (empty in every record, or the part is not clean: checked when flattened)."""
    if kind.id == "struct":
        return {name: _structure(child) for name, child in kind.children}
    if kind.id == "list":
        return [_structure(kind.children[0][1])]
    if kind.id == "map":
        return "JSON"
    name = str(kind).strip('"').upper()
    if name in ("VARCHAR", "BIGINT", "UBIGINT", "HUGEINT", "DOUBLE", "BOOLEAN", "NULL"):
        return "BIGINT" if name == "HUGEINT" else name
    if name == "JSON":
        return "CONFLICT"  # records disagree (or an empty list's elements): not clean where it is read
    raise NotClean(f"type {kind}")  # DATE, ...


_KIND_TYPES = {"text": ("VARCHAR",), "integer": _INT_TYPES, "number": (*_INT_TYPES, "DOUBLE"), "bool": ("BOOLEAN",),
               "currency": ("VARCHAR",), "unix": _INT_TYPES}


def _typed_check(expr: str, node: Any, steps: list[str], spec: Field, sql: SqlParts, depth: int) -> str:
    """The contract's check of one declared path over typed values (``expr`` of type ``node``): true only when
    :class:`Contract` accepts every value at the path."""
    if not steps:
        return _typed_leaf(expr, node, spec, sql)
    step = steps[0]
    key = step.removesuffix("[]")
    if node in (None, "NULL") or node == "JSON":
        if spec.required:
            raise NotClean("a required field is missing in every record")
        return "true"
    if node == "CONFLICT":
        raise NotClean("records disagree on a declared field's type")
    if not isinstance(node, dict):
        return "true"  # not an object: the field's own declaration or the type check decides
    child = node.get(key)
    child_expr = f"struct_extract({expr}, {_quote(key)})"
    if step.endswith("[]"):
        if not isinstance(child, list):
            return "true"  # missing or null lists pass (Contract skips what is not a list)
        if child[0] in ("CONFLICT", "NULL"):
            # elements DuckDB could not type: only lists that are empty everywhere pass
            return f"coalesce(len({child_expr}), 0) = 0"
        var = f"x{depth}"
        inner = _typed_check(var, child[0], steps[1:], spec, sql, depth + 1)
        return f"coalesce(list_bool_and(list_transform({child_expr}, lambda {var}: {inner})), true)"
    if len(steps) > 1 and spec.required:
        # Contract's ``required_below``: the object on the way must be there
        if child in (None, "NULL"):
            raise NotClean("a required field's object is missing in every record")
        return f"({child_expr} IS NOT NULL AND {_typed_check(child_expr, child, steps[1:], spec, sql, depth)})"
    return _typed_check(child_expr, child, steps[1:], spec, sql, depth)


def _typed_leaf(expr: str, node: Any, spec: Field, sql: SqlParts) -> str:
    kind = spec.kind
    if node in (None, "NULL"):
        if spec.required:
            raise NotClean("a required field is missing in every record")
        return "true"
    if kind == "object":
        ok = isinstance(node, dict) or node == "JSON"
    elif kind == "list":
        ok = isinstance(node, list)
    else:
        ok = isinstance(node, str) and node in _KIND_TYPES.get(kind, ())
        if kind not in _KIND_TYPES:
            raise NotClean(f"field kind {kind} has no typed check")
    if not ok:
        raise NotClean(f"a value of type {node} for a {kind} field")
    terms = []
    if kind in ("integer", "number"):
        if spec.min is not None:
            terms.append(f"{expr} >= {spec.min!r}")
        if spec.max is not None:
            terms.append(f"{expr} <= {spec.max!r}")
    elif kind == "text":
        if spec.required:
            terms.append(f"regexp_matches({expr}, '[A-Za-z0-9]')")
        if spec.choices is not None:
            terms.append(f"{expr} IN ({', '.join(_quote(c) for c in sorted(spec.choices))})")
    elif kind == "currency":
        terms.append(f"regexp_full_match({expr}, '[A-Za-z]{{3}}')")
        if sql.contract.currencies is not None:
            terms.append(f"lower({expr}) IN ({', '.join(_quote(c) for c in sorted(sql.contract.currencies))})")
    elif kind == "unix":
        if sql._bounds is None:
            raise NotClean("no date window")
        terms.append(f"{expr} >= {sql._bounds[0]} AND {expr} < {sql._bounds[1]}")
    body = " AND ".join(terms) or "true"
    return f"({expr} IS NOT NULL AND {body})" if spec.required else f"({expr} IS NULL OR ({body}))"


def _categories(structure: dict[str, Any], prefix: str, json_paths: frozenset[str], types: dict[str, str]) -> None:
    """The (path, category) pairs :class:`cs_kpis.sources.common.helpers.FieldTypes` learns from a record of
    this structure, added to ``types``; a path with two categories in the part is not clean."""
    for key, value in structure.items():
        path = f"{prefix}{key}"
        if path in json_paths:
            category = "json"
        elif isinstance(value, dict):
            category = "object"
        elif isinstance(value, list):
            category = "list"
        elif value == "NULL":
            continue
        elif value == "JSON":
            category = "object"  # an object DuckDB read as a map: empty (checked when flattened)
        else:
            category = _CATEGORY.get(value)
            if category is None:
                raise NotClean(f"{path}: {value}")
        if types.setdefault(path, category) != category:
            raise NotClean(f"{path} changes type within the part")
        if category == "object" and isinstance(value, dict):
            _categories(value, f"{path}.", json_paths, types)


def _columns(structure: dict[str, Any], steps: list[str], json_paths: frozenset[str],
             columns: dict[str, tuple[list[str], set[str]]]) -> None:
    """The flattened columns of a record of this structure (``flatten``'s names), each with its vendor steps
    and the kinds of value it holds, added to ``columns`` in first-seen order."""
    for key, value in structure.items():
        if not _PLAIN_KEY.match(key):
            raise NotClean(f"key {key!r}")
        here = [*steps, key]
        dotted = ".".join(here)
        if isinstance(value, dict) and value and dotted not in json_paths:
            columns.setdefault("__".join(here), (here, set()))[1].add("OBJECT")
            _columns(value, here, json_paths, columns)
            continue
        if dotted in json_paths or isinstance(value, list | dict):
            kind = "JSON_TEXT"
        elif value == "JSON":
            kind = "EMPTY"
        else:
            kind = value
        name = "__".join(here)
        entry = columns.setdefault(name, (here, set()))
        if entry[0] != here:
            raise NotClean(f"two paths flatten to {name}")
        entry[1].add(kind)


# ---- the second pass of a files-mode load, part by part ------------------------------------------------------

def sql_second_pass(sql: SqlParts, read: Any, folder: str, python_records: Any, numbered: Any, check: Any,
                    lane: Any, feeds: list[Any], field_types: dict[str, str], collecting: Any) -> Any:
    """The second pass of :func:`cs_kpis.sources.common.entity.entity_resource` over ``folder``'s parts: a part
    :meth:`SqlParts.read` proves clean (and whose types agree with those learned so far) loads as Arrow tables;
    any other part goes through the Python steps (``check``, then each lane's ``take``) record by record. Both
    number records alike (``numbered.count``), so the key pass's winners decide across parts and days."""
    from cs_kpis.sources.common.landing import part_files, relative_origin
    from cs_kpis.sources.common.steps import check_records

    lanes = [lane, *(feed.lane for feed in feeds)]
    buffers: dict[int, list[pa.Table]] = {id(one): [] for one in lanes}
    """per lane, the clean parts' tables not yet handed to dlt: one table per 50,000 rows, as ArrowRows batches
    (dlt's cost per item made a table per part slower)"""
    parts = {"sql": 0, "python": 0}
    for day in read.days:
        for path in part_files(read.landing_dir, folder, day):
            origin = relative_origin(read.landing_dir, path)
            result = sql.read(path)
            knowns = [field_types, *(feed.field_types for feed in feeds)]
            if result is not None and not all(
                    known.get(p) in (None, c) for known in knowns for p, c in result.parent_types.items()):
                result = None
            parts["sql" if result is not None else "python"] += 1
            if result is None:
                for one in lanes:
                    yield from _flush(one, buffers[id(one)])
                for outcomes in check_records(_numbered(numbered, day, python_records(path, origin)), check):
                    collecting.tick()
                    for one, outcome in zip(lanes, outcomes, strict=True):
                        yield from one.take(outcome)
                continue
            base = numbered.count
            numbered.count += result.records
            for known in knowns:
                known.update(result.parent_types)
            ordinals = range(base, base + result.records)
            wins = [lane.dedupe.winners.wins(key, at) for key, at in zip(result.keys, ordinals, strict=True)]
            yield from _emit(lane, buffers[id(lane)], result.parent, wins, [1] * result.records, day, origin,
                             result.json_columns)
            for feed in feeds:
                winners = feed.lane.dedupe.winners
                child_wins = [winners.wins(("group", key[0]), at) for key, at in zip(result.keys, ordinals, strict=True)]
                mask = pa.array([child_wins[pos] for pos in result.child.column("pos").to_pylist()], pa.bool_())
                yield from _emit(feed.lane, buffers[id(feed.lane)], result.child.drop_columns(["pos"]), child_wins,
                                 result.child_counts, day, origin, result.json_columns, mask)
    for one in lanes:
        yield from _flush(one, buffers[id(one)])
    sql.parts = parts
    sql.con.close()
    log.info("%s: %d parts loaded by SQL, %d by the Python path", folder, parts["sql"], parts["python"])


def _numbered(numbered: Any, day: str, records: Any) -> Any:
    for record in records:
        yield day, numbered.count, record
        numbered.count += 1


BATCH_ROWS = 50_000
"""rows a table handed to dlt holds (the last one of a pass fewer), as :class:`ArrowRows` batches them"""


def _flush(lane: Any, buffer: list[pa.Table]) -> Any:
    """The buffered tables of ``lane`` as one, to dlt (a column missing from a part's table is null there)."""
    if buffer:
        table = pa.concat_tables(buffer, promote_options="default") if len(buffer) > 1 else buffer[0]
        buffer.clear()
        yield lane.emitter.wrap(table, lane.emitter.arrow.hints())


def _emit(lane: Any, buffer: list[pa.Table], table: pa.Table, wins: list[bool], rows_of: list[int], day: str,
          origin: str, json_columns: frozenset[str], mask: pa.Array | None = None) -> Any:
    """A clean part's rows through one lane: its counts as :meth:`Lane.take` counts them, the winners' rows with
    the lineage columns, as one Arrow table typed as :class:`ArrowRows` types them, added to ``buffer`` (handed
    to dlt once it holds :data:`BATCH_ROWS`)."""
    from datetime import date

    from dlt.common.normalizers.utils import generate_dlt_ids

    from cs_kpis.sources.common.arrow_rows import LOAD_ID, ROW_ID

    if lane.spec.cursor or not lane.spec.lineage_columns:
        raise RuntimeError("the SQL path loads files-mode tables with lineage columns and no cursor only")
    counts = lane.counts
    read = sum(rows_of)
    loaded = sum(rows for rows, win in zip(rows_of, wins, strict=True) if win)
    lane.records_read += len(wins)
    counts.rows_read += read
    counts.rows_loaded += loaded
    counts.rows_deduplicated += read - loaded
    if not loaded:
        return
    table = table.filter(mask if mask is not None else pa.array(wins, pa.bool_()))
    # the Python path's rows of earlier parts first, so that tables reach dlt in the order of their rows
    yield from lane.emitter.flush()
    arrow = lane.emitter.arrow
    count = table.num_rows
    # ArrowRows' column order: by the first row where a column holds a value, then by its place in that row
    # (the lineage columns end every row)
    places = []
    for place, column in enumerate(table.columns):
        if column.null_count < count:
            places.append((pc.index(column.is_valid(), True).as_py(), place, column))
    places += [(0, len(table.columns), None), (0, len(table.columns) + 1, None)]
    arrays, names = [], []
    for _, place, column in sorted(places, key=lambda item: item[:2]):
        if column is None:
            arrays.append(pa.array([date.fromisoformat(day)] * count, pa.date32()) if place == len(table.columns)
                          else pa.array([origin] * count, pa.string()))
            names.append("_extract_day" if place == len(table.columns) else "_origin")
            continue
        name = table.column_names[place]
        column = column.combine_chunks()
        if pa.types.is_integer(column.type):
            known = arrow.known_types.get(name)
            if known is None and arrow.stored_types is not None:
                known = arrow.known_types[name] = arrow.stored_types(name) or column.type
            if known is None:
                arrow.known_types[name] = column.type
            elif pa.types.is_floating(known):
                column = column.cast(known)
        if name in json_columns:
            arrow.json_columns.add(name)
        arrays.append(column)
        names.append(name)
    arrays += [pa.array([arrow.load_id] * count, pa.string()), pa.array(generate_dlt_ids(count), pa.string())]
    names += [LOAD_ID, ROW_ID]
    fields = [pa.field(name, array.type, nullable=name not in (LOAD_ID, ROW_ID))
              for name, array in zip(names, arrays, strict=True)]
    buffer.append(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))
    if sum(one.num_rows for one in buffer) >= BATCH_ROWS:
        yield from _flush(lane, buffer)
