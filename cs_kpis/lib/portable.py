"""The portable SQL subset (docs/PORTABILITY.md), checked on sqlglot's parse, and the DuckDB -> Spark transpile.

``lint(sql)`` walks the sqlglot AST of a model (read as DuckDB) and returns one ``Violation`` per construct
that is known to fail, or to give a different answer without any error, once transpiled to Spark. Each
rule names the PORTABILITY.md rule it enforces, or the measurement behind it. ``to_spark(sql)`` is the
transpile the portability tests run on Spark Connect.

Template tokens are not SQL: ``{{ name }}`` (Jinja-style) and ``$name`` (``string.Template``, the alerts)
are replaced by a dummy identifier before parsing, so a templated model lints the same as its rendering.
"""

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

READ = "duckdb"
WRITE = "spark"

_JINJA = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_DOLLAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")

# DuckDB-only JSON functions: sqlglot does not know them and passes them to Spark verbatim, where they
# either do not exist or mean something else (DuckDB's json_transform/from_json take a DuckDB type
# structure, Spark's from_json a DDL schema).
DUCKDB_ONLY_LIST = frozenset({
    "list_sum", "list_product", "list_avg", "list_min", "list_max", "list_transform", "list_filter",
    "list_reduce", "list_aggregate", "list_sort", "list_distinct",
})
DUCKDB_ONLY_JSON = frozenset({
    "json_transform", "json_transform_strict", "from_json", "from_json_strict", "json_structure",
    "json_group_array", "json_group_object", "json_group_structure", "json_merge_patch", "json_keys",
    "json_serialize_sql", "json_deserialize_sql", "json_execute_serialized_sql", "json_contains",
    "json_exists", "json_value", "json_type", "json_valid", "json_array_length", "json_quote",
    "json_pretty", "to_json",
})
_DOW_PARTS = frozenset({"dow", "isodow", "dayofweek", "weekday", "dw", "dayofweekiso"})
_CALENDAR_DIFF_UNITS = frozenset({"month", "months", "mon", "mons", "quarter", "quarters", "year", "years",
                                  "yr", "yrs", "y", "decade", "century", "millennium"})


@dataclass(frozen=True)
class Violation:
    rule: str
    """short id, e.g. ``date-diff-calendar``; allow-lists key on it"""
    construct: str
    """the offending SQL, as DuckDB SQL"""
    why: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.construct}: {self.why}"


def strip_templating(sql: str) -> str:
    """``{{ name }}`` and ``$name`` -> a dummy identifier ``__tpl_name`` (parse only; never executed)."""
    sql = _JINJA.sub(lambda m: "__tpl_" + m.group(1).replace(".", "_"), sql)
    return _DOLLAR.sub(lambda m: "__tpl_" + m.group(1), sql)


def parse(sql: str) -> list[exp.Expression]:
    """Every statement of ``sql`` (templating stripped), parsed as DuckDB; raises sqlglot.ParseError."""
    return [e for e in sqlglot.parse(strip_templating(sql), read=READ) if e is not None]


def _unit(node: exp.Expression) -> str:
    unit = node.args.get("unit")
    if unit is None:
        return "day"
    return (unit.name if isinstance(unit, (exp.Var, exp.Literal, exp.Identifier, exp.Column)) else unit.sql()).lower()


def _is_double_cast(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Cast) and node.to.this in (
        exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)


def _is_double(node: exp.Expression | None) -> bool:
    """A DOUBLE on both engines: a cast to DOUBLE, or arithmetic with a DOUBLE operand."""
    if _is_double_cast(node):
        return True
    if isinstance(node, (exp.Paren, exp.Neg)):
        return _is_double(node.this)
    if isinstance(node, (exp.Mul, exp.Add, exp.Sub, exp.Div)):
        return _is_double(node.left) or _is_double(node.right)
    return False


def _is_constant(node: exp.Expression) -> bool:
    """A literal, possibly in parentheses. A template token is not: the alerts' ``$name`` values are bound
    parameters (``:name`` on Spark), and Spark's parser rejects a parameter as an interval's quantity."""
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Literal)


def _ratio_is_cast(node: exp.Expression) -> bool:
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return _is_double_cast(parent)


def _snippet(node: exp.Expression, limit: int = 90) -> str:
    text = " ".join(node.sql(dialect=READ).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(node: exp.Expression) -> Violation | None:
    # rule 1: generators, unnest, table functions in FROM
    generators = (exp.Unnest, exp.Explode, exp.GenerateSeries, exp.GenerateDateArray)
    if isinstance(node, generators) or (isinstance(node, exp.Table) and isinstance(node.this, generators)):
        return Violation("generator", _snippet(node),
                         "rule 1: generators and unnest do not transpile to Spark (sqlglot wraps them in casts or "
                         "EXPLODE(SEQUENCE) in FROM); join a calendar table instead")
    if isinstance(node, exp.Table) and isinstance(node.this, (exp.Anonymous, exp.Func)):
        return Violation("table-function", _snippet(node),
                         "rule 1: table functions in FROM do not exist on Spark under the same name")
    # rule 2
    if isinstance(node, exp.Qualify):
        return Violation("qualify", _snippet(node),
                         "rule 2: no QUALIFY; compute the window in a subquery and filter outside")
    # rule 3: an ordered aggregation into a list loses its ORDER BY (collect_list has none)
    # (string_agg ... order by is fine: it becomes Spark 4's LISTAGG ... WITHIN GROUP (ORDER BY ...))
    if isinstance(node, exp.ArrayAgg) and node.find(exp.Order):
        return Violation("ordered-list-agg", _snippet(node),
                         "rule 3: Spark's collect_list has no ORDER BY; sqlglot drops it without an error")
    # rule 4: date_diff in calendar units (DuckDB counts boundaries, Spark whole months: 1 vs 0)
    diffs = (exp.DateDiff, exp.DatetimeDiff, exp.TimestampDiff, exp.TsOrDsDiff)
    if isinstance(node, diffs) and _unit(node) in _CALENDAR_DIFF_UNITS:
        return Violation("date-diff-calendar", _snippet(node),
                         "rule 4: date_diff('month', 2024-01-31, 2024-02-01) is 1 on DuckDB and 0 on Spark; "
                         "count months as (year(b)*12+month(b)) - (year(a)*12+month(a))")
    # rule 5: day of week (Sunday is 0 vs 1; isodow 7 vs 2)
    if isinstance(node, (exp.DayOfWeek, exp.DayOfWeekIso)):
        return Violation("day-of-week", _snippet(node),
                         "rule 5: day-of-week numbers differ between DuckDB and Spark (Sunday 0 vs 1, isodow 7 vs 2)")
    if isinstance(node, exp.Extract) and node.name.lower() in _DOW_PARTS:
        return Violation("day-of-week", _snippet(node), "rule 5: day-of-week numbers differ between engines")
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("date_part", "datepart"):
        part = node.expressions[0] if node.expressions else None
        if part is not None and part.name.lower() in _DOW_PARTS:
            return Violation("day-of-week", _snippet(node), "rule 5: day-of-week numbers differ between engines")
    # rule 6: every ratio cast to DOUBLE (decimal / decimal is DOUBLE on DuckDB, DECIMAL on Spark)
    if isinstance(node, exp.Div) and not (_is_double(node.left) or _is_double(node.right) or _ratio_is_cast(node)):
        return Violation("ratio-not-double", _snippet(node),
                         "rule 6: cast a ratio's operand (or the ratio) to DOUBLE; decimal / decimal is DOUBLE on "
                         "DuckDB and DECIMAL on Spark")
    # measured: DuckDB-only JSON functions pass through verbatim
    if isinstance(node, (exp.Anonymous, exp.Func)):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name in DUCKDB_ONLY_LIST and not portable_list_sum(node):
            return Violation("duckdb-list", _snippet(node),
                             "DuckDB's list functions pass through verbatim (Spark: UNRESOLVED_ROUTINE LIST_SUM, "
                             "measured); take the list apart against marts.dim_position and aggregate instead")
        if name in DUCKDB_ONLY_JSON and not _portable_json_transform(node):
            return Violation("duckdb-json", _snippet(node),
                             f"{name} is DuckDB-only: sqlglot passes it to Spark unchanged, where it does not exist "
                             "or takes a different schema; extract fields with json_extract_string instead")
    # measured: an interval whose quantity is an expression, `interval (n - 1) day`, is DuckDB's; Spark's
    # parser rejects it (PARSE_SYNTAX_ERROR at DAY). A literal quantity is fine.
    if isinstance(node, exp.Interval) and node.this is not None and not _is_constant(node.this):
        return Violation("interval-expression", _snippet(node),
                         "an interval with a computed quantity does not parse on Spark; use a literal interval, or "
                         "compare day numbers (date_diff('day', a, b) <= n)")
    # measured: ASOF joins are DuckDB's; sqlglot emits them verbatim and Spark's parser rejects them
    if isinstance(node, exp.Join) and (node.args.get("method") or "").upper() == "ASOF":
        return Violation("asof-join", "asof join " + _snippet(node.this, 40),
                         "ASOF JOIN is DuckDB-only (Spark: PARSE_SYNTAX_ERROR); use a window (max over a frame) or "
                         "a range join with row_number()")
    # measured: UNION BY NAME is DuckDB's; sqlglot emits it verbatim
    if isinstance(node, exp.Union) and node.args.get("by_name"):
        return Violation("union-by-name", "union ... by name",
                         "UNION BY NAME is DuckDB-only; sqlglot emits it to Spark unchanged and Spark rejects it")
    return None


def lint(sql: str) -> list[Violation]:
    """Every non-portable construct in ``sql``, in document order (empty when the model is portable)."""
    found, flagged = [], set()
    for tree in parse(sql):
        for node in tree.walk():
            parent, inside = node.parent, False
            while parent is not None and not inside:
                inside, parent = id(parent) in flagged, parent.parent
            if inside:
                continue  # one violation per construct, not one per node inside it
            v = _check(node)
            if v is not None:
                found.append(v)
                flagged.add(id(node))
    return found


def to_spark(sql: str, pretty: bool = False) -> str:
    """``sql`` (one DuckDB statement, already rendered) as Spark SQL; raises on what sqlglot cannot express.

    sqlglot's transpile, after the rewrites of :func:`spark_rewrites` (the portable forms it gets wrong)."""
    trees = [t for t in sqlglot.parse(sql, read=READ) if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected one statement, got {len(trees)}")
    tree = spark_rewrites(trees[0])
    return tree.sql(dialect=WRITE, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE)


# DuckDB type names of a json_transform structure -> Spark DDL
_SPARK_TYPES = {"VARCHAR": "string", "TEXT": "string", "BIGINT": "bigint", "INTEGER": "int", "INT": "int",
                "SMALLINT": "smallint", "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean",
                "DATE": "date", "TIMESTAMP": "timestamp", "JSON": "string"}
_INTEGER_ARRAYS = (exp.DataType.Type.BIGINT, exp.DataType.Type.INT, exp.DataType.Type.SMALLINT)


def spark_ddl(structure) -> str:
    """A DuckDB ``json_transform`` structure (parsed JSON) as a Spark DDL type: ``{"a": "VARCHAR"}`` ->
    ``struct<`a`: string>``, ``["BIGINT"]`` -> ``array<bigint>``. Raises on a type it does not know."""
    if isinstance(structure, dict):
        return "struct<" + ", ".join(f"`{k}`: {spark_ddl(v)}" for k, v in structure.items()) + ">"
    if isinstance(structure, list) and len(structure) == 1:
        return f"array<{spark_ddl(structure[0])}>"
    if isinstance(structure, str) and structure.upper() in _SPARK_TYPES:
        return _SPARK_TYPES[structure.upper()]
    raise ValueError(f"json_transform structure {structure!r}: no Spark type for it")


def _portable_json_transform(node: exp.Expression) -> bool:
    """``json_transform(x, '<literal structure>')``: the one portable JSON parse (Spark: from_json)."""
    return (isinstance(node, exp.Anonymous) and node.name.lower() == "json_transform" and len(node.expressions) == 2
            and isinstance(node.expressions[1], exp.Literal) and node.expressions[1].is_string)


def _wildcard_key(path: exp.Expression) -> str | None:
    """``$[*].key`` -> ``key``; anything else None."""
    if not isinstance(path, exp.JSONPath):
        return None
    parts = path.expressions
    if (len(parts) == 3 and isinstance(parts[0], exp.JSONPathRoot) and isinstance(parts[1], exp.JSONPathSubscript)
            and isinstance(parts[1].this, exp.JSONPathWildcard) and isinstance(parts[2], exp.JSONPathKey)):
        return str(parts[2].this)
    return None


def _integer_list_of_field(node: exp.Expression) -> tuple[exp.Expression, str, str] | None:
    """``cast(json_extract(x, '$[*].key') as bigint[])`` -> (x, key, element type), else None."""
    if not (isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.ARRAY and node.to.expressions
            and node.to.expressions[0].this in _INTEGER_ARRAYS and isinstance(node.this, exp.JSONExtract)):
        return None
    key = _wildcard_key(node.this.expression)
    if key is None:
        return None
    return node.this.this, key, node.to.expressions[0].sql(dialect=WRITE).lower()


def portable_list_sum(node: exp.Expression) -> bool:
    """``list_sum(cast(json_extract(x, '$[*].key') as bigint[]))``: the one portable list sum (the sum of one
    integer field over a JSON array); Spark: aggregate over from_json."""
    return (isinstance(node, exp.Anonymous) and node.name.lower() == "list_sum" and len(node.expressions) == 1
            and _integer_list_of_field(node.expressions[0]) is not None)


def _zero_based(index: exp.Expression) -> exp.Expression:
    """A 1-based index as a 0-based one: ``x + 1`` -> ``x``, a literal ``n`` -> ``n - 1``, else ``(i) - 1``."""
    if isinstance(index, exp.Add) and isinstance(index.expression, exp.Literal) and index.expression.sql() == "1":
        return index.this
    if isinstance(index, exp.Literal):
        return exp.Literal.number(int(index.sql()) - 1)
    return exp.Sub(this=exp.Paren(this=index), expression=exp.Literal.number(1))


def spark_rewrites(tree: exp.Expression) -> exp.Expression:
    """The portable forms sqlglot 30 transpiles wrongly, rewritten for Spark (each measured on Spark 4.3 by
    cs_kpis_tests/portability):

    - ``json_transform(x, '<structure>')`` (DuckDB) -> ``from_json(x, '<Spark DDL>')``: sqlglot passes it
      through and Spark has no such function; both give NULL for a missing key.
    - ``list_sum(cast(json_extract(x, '$[*].k') as bigint[]))`` -> ``aggregate(transform(from_json(x,
      'array<struct<k: bigint>>'), e -> e.k), null, ...)``: sqlglot makes ``get_json_object(x, '$[*].k')``,
      which Spark unwraps to a bare value for a one-element array, so the cast to an array gives NULL.
      NULL elements are skipped and an empty list sums to NULL, as DuckDB's list_sum.
    - ``list[i]`` (1-based on DuckDB, NULL out of range) -> ``get(list, i - 1)`` (0-based, NULL out of range
      and for a negative index): sqlglot keeps a computed index as it is when it cannot type the list, and
      Spark reads ``list[i]`` 0-based (and fails out of range under ANSI, where DuckDB gives NULL). Not
      ``try_element_at(list, i)``: it is 1-based too but throws INVALID_INDEX_OF_ZERO for index 0 instead of
      giving NULL, and a model on the tiny company failed with that error once in a parallel test run (the
      index there, ``position + 1``, is never 0 in the data, so Spark evaluated it for a row the join had not
      kept); ``get`` cannot throw. A literal negative index (``list[-1]``, the last element) keeps
      ``try_element_at``, which counts from the end as DuckDB does.
    """
    def rewrite(node: exp.Expression) -> exp.Expression:
        if _portable_json_transform(node):
            import json

            ddl = spark_ddl(json.loads(node.expressions[1].this))
            return exp.Anonymous(this="from_json", expressions=[node.expressions[0].copy(), exp.Literal.string(ddl)])
        if portable_list_sum(node):
            source, key, element = _integer_list_of_field(node.expressions[0])
            summed = sqlglot.parse_one(
                f"aggregate(transform(from_json(__src, 'array<struct<`{key}`: {element}>>'), __e -> __e.`{key}`), "
                f"cast(null as {element}), (__acc, __v) -> case when __v is null then __acc "
                f"else coalesce(__acc, 0) + __v end)", read=WRITE)
            return summed.transform(
                lambda n: source.copy() if isinstance(n, exp.Column) and n.name == "__src" and not n.table else n)
        if (isinstance(node, exp.Bracket) and len(node.expressions) == 1
                and not (isinstance(node.expressions[0], exp.Literal) and node.expressions[0].is_string)):
            index = node.expressions[0]
            if isinstance(index, exp.Literal) or (isinstance(index, exp.Neg) and isinstance(index.this, exp.Literal)):
                # sqlglot stores a literal index 0-based already (list[1] -> 0, list[-1] -> -2)
                index = exp.Literal.number(int(index.sql()) + 1)
            # transform() does not visit inside a node it replaced: rewrite the list and the index themselves,
            # so a subscript inside a subscript (items.data[i].discounts[j]) is rewritten too
            listed, index = node.this.copy().transform(rewrite), index.copy().transform(rewrite)
            if isinstance(index, exp.Neg):
                # DuckDB's list[-1] is the last element: only try_element_at counts from the end
                return exp.Anonymous(this="try_element_at", expressions=[listed, index])
            return exp.Anonymous(this="get", expressions=[listed, _zero_based(index)])
        return node

    return tree.transform(rewrite)


def tables_read(sql: str, schemas=("raw", "staging", "marts", "kpis", "alerts")) -> set[tuple[str, str]]:
    """``(schema, table)`` for every warehouse table ``sql`` reads (CTE names are not tables)."""
    found = set()
    for tree in parse(sql):
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.db in schemas and table.name not in ctes:
                found.add((table.db, table.name))
    return found


def _steps_are_safe(tree: exp.Expression, with_: exp.With) -> bool:
    """Whether :func:`to_spark_steps` may split ``tree`` at ``with_``: the renaming keeps a CTE's name and body
    only, so it is refused (the query stays one statement) where more than those carries meaning: a recursive
    WITH anywhere, a column list on a CTE (``a(x, y) as ...``) or on an alias of a read (``from a as p(q)``), a
    nested WITH reusing a top-level CTE's name, or a top-level CTE read with other letter case than its name."""
    names = {c.alias for c in with_.expressions}
    lower = {n.lower() for n in names}
    for w in tree.find_all(exp.With):
        if w.recursive:
            return False
    for c in tree.find_all(exp.CTE):
        alias = c.args.get("alias")
        if (alias is not None and alias.columns) or (c.parent is not with_ and c.alias in names):
            return False
    for t in tree.find_all(exp.Table):
        if t.db:
            continue
        if t.name not in names and t.name.lower() in lower:
            return False
        alias = t.args.get("alias")
        if t.name in names and alias is not None and alias.columns:
            return False
    return True


def to_spark_steps(sql: str, tag: str, min_reads: int = 2) -> tuple[list[tuple[str, str]], str]:
    """``sql`` (one DuckDB statement, already rendered) as Spark SQL in steps: ``([(view, select), ...], final)``.

    Spark copies a CTE into the plan at every place it is read (its optimizer inlines every deterministic CTE),
    so a CTE read at ten places is planned, optimized and computed ten times, and so is every CTE it reads: the
    indicators' query (37 CTEs) inlines to thousands of CTE bodies. Each top-level CTE read at ``min_reads``
    places or more becomes a step instead: its select, to be materialized once as the temporary view ``view``
    (``<tag>_<cte>``) in the order given, each later step and ``final`` reading the view where the query read
    the CTE (as the CTE's name, so qualified columns still resolve). A CTE read once stays a CTE of the step or
    of ``final`` that reads it. The rows are the query's: every CTE is a deterministic select of the same
    inputs, computed once instead of at each read. ``([], to_spark(sql))`` when the query has no CTE read twice,
    or where the renaming would not be safe (:func:`_steps_are_safe`: column lists, recursion, a reused name)."""
    trees = [t for t in sqlglot.parse(sql, read=READ) if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected one statement, got {len(trees)}")
    tree = spark_rewrites(trees[0])

    def spark(node: exp.Expression) -> str:
        return node.sql(dialect=WRITE, unsupported_level=sqlglot.ErrorLevel.RAISE)

    with_ = tree.args.get("with_")
    if with_ is None or not _steps_are_safe(tree, with_):
        return [], spark(tree)
    ctes = {c.alias: c.this for c in with_.expressions}
    main = tree.copy()
    main.set("with_", None)

    def reads(node: exp.Expression) -> dict[str, int]:
        found: dict[str, int] = {}
        for t in node.find_all(exp.Table):
            if not t.db and t.name in ctes:
                found[t.name] = found.get(t.name, 0) + 1
        return found

    read_by = {name: reads(body) for name, body in ctes.items()}
    total: dict[str, int] = {}
    for found in [*read_by.values(), reads(main)]:
        for name, n in found.items():
            total[name] = total.get(name, 0) + n
    steps = [name for name in ctes if total.get(name, 0) >= min_reads]
    if not steps:
        return [], spark(tree)
    views = {name: f"{tag}_{name}" for name in steps}

    def renamed(body: exp.Expression) -> exp.Expression:
        body = body.copy()
        for t in list(body.find_all(exp.Table)):
            if not t.db and t.name in views:
                alias = t.alias or t.name
                t.set("this", exp.to_identifier(views[t.name]))
                t.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return body

    def statement(body: exp.Expression) -> str:
        body = renamed(body)
        # the CTEs read once that this statement needs (directly or through each other), in the query's order
        needed: set[str] = set()
        pending = list(reads(body))
        while pending:
            name = pending.pop()
            if name not in needed:
                needed.add(name)
                pending.extend(n for n in read_by[name] if n not in views)
        if needed:
            own = body.args.get("with_")
            inner = [exp.CTE(this=renamed(ctes[n]), alias=exp.TableAlias(this=exp.to_identifier(n)))
                     for n in ctes if n in needed]
            body.set("with_", exp.With(expressions=inner + (list(own.expressions) if own else [])))
        return spark(body)

    return [(views[name], statement(ctes[name])) for name in steps], statement(main)
