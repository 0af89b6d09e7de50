"""Pure functions shared by the sources: timestamp parsing, field access, type tracking, quarantine rows."""

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any


class Reject(ValueError):
    """A record that cannot load; the message is the quarantine reason, ``field`` the vendor field at fault
    (counted per batch: a field rejected in most records is a contract change that stops the load)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SchemaTypeChange(TypeError):
    """A field that already has a type in the warehouse arrived with another type: the load must stop."""


def parse_unix(value: Any) -> datetime | None:
    """Unix seconds (Stripe, Delighted) to an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise Reject(f"expected Unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)  # positional: a third faster than tz=UTC, per timestamp
    except (ValueError, OverflowError, OSError) as exc:
        raise Reject(f"Unix seconds out of range: {value!r}") from exc


def parse_iso(value: Any) -> datetime | None:
    """ISO-8601 with ``Z`` or an offset (Zendesk, Segment) to an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Reject(f"expected an ISO-8601 timestamp, got {value!r}")
    return _iso_utc(value)


@lru_cache(maxsize=4096)
def _iso_utc(value: str) -> datetime:
    """:func:`parse_iso` of a string, remembered: a record's contract and its preparation parse the same
    timestamps, and records repeat them (a datetime is immutable, so rows may share one)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Reject(f"expected an ISO-8601 timestamp, got {value!r}") from exc
    if parsed.tzinfo is None:
        raise Reject(f"timestamp without a timezone: {value!r}")
    return parsed.astimezone(UTC)


def parse_salesforce_datetime(value: Any) -> datetime | None:
    """Salesforce ``2025-12-16T13:05:30.000+0000`` (offset without colon) to an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Reject(f"expected a Salesforce datetime, got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
    except ValueError as exc:
        raise Reject(f"expected a Salesforce datetime like 2025-12-16T13:05:30.000+0000, got {value!r}") from exc


def parse_date(value: Any) -> date | None:
    """``YYYY-MM-DD`` to a date."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Reject(f"expected a date, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Reject(f"expected a date like 2025-12-16, got {value!r}") from exc


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    """``a.b.c`` lookup in nested dicts; None when any step is missing or not a dict."""
    if type(obj) is dict and "." not in path:
        return obj.get(path)  # the common case: a top-level field of a parsed record
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts when the parent exists (never creates structure)."""
    *parents, last = path.split(".")
    current: Any = obj
    for part in parents:
        current = current.get(part) if isinstance(current, dict) else None
        if current is None:
            return
    if isinstance(current, dict) and last in current:
        current[last] = value


def convert_fields(obj: dict[str, Any], paths: Iterable[str], parse) -> None:
    """Replace the value at each path with ``parse(value)``; a failure names the field."""
    for path in paths:
        value = get_path(obj, path)
        if value is None:
            continue
        try:
            set_path(obj, path, parse(value))
        except Reject as exc:
            raise Reject(f"wrong type in {path}: {exc}", field=path) from None


def convert_flat_fields(row: dict[str, Any], paths: Iterable[str], parse) -> None:
    """:func:`convert_fields` for a row already flattened by :func:`flatten` (``a.b`` is the ``a__b`` key):
    converting after flattening spares a deep copy of the vendor object, which stays untouched."""
    for path in paths:
        key = path.replace(".", "__")
        value = row.get(key)
        if value is None:
            continue
        try:
            row[key] = parse(value)
        except Reject as exc:
            raise Reject(f"wrong type in {path}: {exc}", field=path) from None


def require_fields(obj: Mapping[str, Any], paths: Iterable[str]) -> None:
    """Reject a record with a missing or empty primary key field."""
    for path in paths:
        value = get_path(obj, path)
        if value is None or value == "":
            raise Reject(f"missing primary key {path}", field=path)


def check_non_negative(obj: Mapping[str, Any], paths: Iterable[str]) -> None:
    """Reject a record whose amount at any of ``paths`` is negative."""
    for path in paths:
        value = get_path(obj, path)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise Reject(f"negative amount in {path}: {value}", field=path)


def check_currency(obj: Mapping[str, Any], paths: Iterable[str], known: set[str] | None) -> None:
    """Reject a record whose currency is not in fx_rates (``known`` None turns the check off)."""
    if known is None:
        return
    for path in paths:
        value = get_path(obj, path)
        if value is not None and str(value).lower() not in known:
            raise Reject(f"unknown currency in {path}: {value!r} is not in reference/fx_rates.csv", field=path)


def type_category(value: Any) -> str | None:
    """The JSON type of a value as the schema sees it; ints and floats are both ``number``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def iter_leaf_types(obj: Mapping[str, Any], json_paths: frozenset[str] = frozenset(), prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, type category) of every non-null value, descending into dicts as dlt flattens them.

    A dict is reported as ``object`` and descended into, so a field that was a number and turns into an
    object (which flattening would move to a new ``<field>__<key>`` column, leaving the old one NULL) is
    a type change too. Lists and the ``json_paths`` (stored as JSON columns) are leaves: their inner shape
    is free.
    """
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in json_paths:
            yield path, "object"
            yield from iter_leaf_types(value, json_paths, f"{path}.")
            continue
        category = "json" if path in json_paths else type_category(value)
        if category is not None:
            yield path, category


def check_field_types(
    obj: Mapping[str, Any],
    known: dict[str, str],
    *,
    where: str,
    json_paths: frozenset[str] = frozenset(),
) -> None:
    """Raise :class:`Reject` (naming the field) when a field already seen has another type now; record the
    type of each field seen for the first time.

    ``known`` persists in dlt state, so a change is caught across loads too. New fields just evolve. The
    record is checked completely before any new field is recorded, so a rejected record teaches nothing.
    A pass checks many records against one ``known``: it keeps a :class:`FieldTypes` instead.
    """
    FieldTypes(known, json_paths).check(obj, where)


_CATEGORIES: dict[type, str] = {bool: "bool", int: "number", float: "number", str: "text", list: "list"}
""":func:`type_category` for the exact types a JSON parser returns (others go through the function)"""
_PLAIN = frozenset({bool, int, float, str, list, dict})
"""the exact types whose category a field can settle on (:attr:`_Step.fits`)"""


class _Step:
    """One key at one level of the objects :class:`FieldTypes` has seen: its dotted path, whether it is a JSON
    path, the category ``known`` holds for it (once it holds one), and the one Python type that has fitted it."""

    __slots__ = ("below", "dotted", "fits", "is_json", "path", "seen")

    def __init__(self, path: str, is_json: bool) -> None:
        self.path = path
        self.dotted = f"{path}."
        self.is_json = is_json
        self.seen: str | None = None
        """``known[path]``, cached once set: an entry of ``known`` never changes (a new field is recorded once,
        a change is rejected)"""
        self.fits: type | None = None
        """a type whose category is ``seen``: a value of exactly this type needs no other look"""
        self.below: dict[str, _Step] = {}


class FieldTypes:
    """:func:`check_field_types` for one pass's records against one ``known`` (and ``json_paths``): the same
    checks, paths, order and messages, with the paths of the keys it has seen kept in a tree, so that a field
    whose value has the type it had before costs one type comparison, not a path string and two lookups."""

    def __init__(self, known: dict[str, str], json_paths: frozenset[str] = frozenset()) -> None:
        self.known = known
        self.json_paths = json_paths
        self._root: dict[str, _Step] = {}

    def check(self, obj: Mapping[str, Any], where: str) -> None:
        new: dict[str, str] = {}
        self._walk(obj, self._root, "", new, where)
        if new:
            self.known.update(new)

    def _walk(self, obj: Mapping[str, Any], level: dict[str, _Step], prefix: str, new: dict[str, str],
              where: str) -> None:
        """The paths of :func:`iter_leaf_types`, in its order, checked as they come."""
        for key, value in obj.items():
            step = level.get(key)
            if step is None:
                path = f"{prefix}{key}"
                step = level[key] = _Step(path, path in self.json_paths)
            kind = type(value)
            if kind is step.fits:
                if kind is dict:
                    self._walk(value, step.below, step.dotted, new, where)
                continue
            if step.is_json:
                category = "json"
            elif isinstance(value, dict):
                category = "object"
            elif value is None:
                continue
            else:
                category = _CATEGORIES.get(kind) or type_category(value)
            seen = step.seen
            if seen is None:
                seen = step.seen = self.known.get(step.path)
            if seen is None:
                new[step.path] = category
            elif seen != category:
                raise Reject(
                    f"field {step.path!r} changed type from {seen} to {category} "
                    f"(value {_short(get_path(obj, key))}) in {where}",
                    field=step.path,
                )
            elif not step.is_json and kind in _PLAIN:
                step.fits = kind
            if category == "object":
                self._walk(value, step.below, step.dotted, new, where)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def to_raw_text(obj: Any) -> str:
    """The original text of a parsed object, for the quarantine table."""
    return json.dumps(obj, default=str, ensure_ascii=False)


def flatten(obj: Mapping[str, Any], json_paths: frozenset[str] = frozenset(), prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into ``a__b`` keys (dlt's separator); lists and ``json_paths`` stay whole.

    Sources load with ``max_table_nesting=0``, so what stays whole lands in a JSON column instead of a
    child table: raw keeps the vendor's shape without a zoo of ``__items__data`` tables. ``json_paths`` are
    dotted vendor paths; a dot inside a vendor key becomes ``__`` too. With a ``prefix`` the keys are the
    dotted paths below it instead.
    """
    if prefix:
        flat: dict[str, Any] = {}
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and path not in json_paths:
                flat.update(flatten(value, json_paths, f"{path}."))
            else:
                flat[path] = value
        return flat
    flat = {}
    _flatten_into(flat, obj, json_paths, "", "")
    return flat


def _flatten_into(flat: dict[str, Any], obj: Mapping[str, Any], json_paths: frozenset[str], dotted: str,
                  under: str) -> None:
    """:func:`flatten`'s walk, writing the final ``a__b`` keys straight into ``flat`` (``dotted``: the vendor
    path so far, for ``json_paths``; ``under``: the column name so far)."""
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            path = dotted + key
            if path not in json_paths:
                _flatten_into(flat, value, json_paths, path + ".", (under + key).replace(".", "__") + "__")
                continue
        name = under + key if under else key
        flat[name.replace(".", "__") if "." in name else name] = value


def strip_key(obj: Any, key: str) -> Any:
    """Remove ``key`` from every dict in a nested structure (Salesforce ``attributes``)."""
    if isinstance(obj, dict):
        return {k: strip_key(v, key) for k, v in obj.items() if k != key}
    if isinstance(obj, list):
        return [strip_key(v, key) for v in obj]
    return obj


def declared_fields(own: Mapping[str, Mapping[str, Iterable[str]]], system: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """A source's ``DECLARED_FIELDS`` ({entity: {data_type: paths}}) under the company configuration's field
    names for ``system`` (:meth:`cs_kpis.config.CompanyConfig.declared_fields`: a custom field or an account-id
    field that this org names differently replaces the demo's name, in place), so that the columns staging
    reads under this profile exist and no demo-named column is made for a field the org does not have."""
    from cs_kpis.config import DEMO, load  # here: config imports pydantic and yaml

    demo = DEMO.declared_fields(system)
    merged = {entity: {t: tuple(paths) for t, paths in types.items()} for entity, types in own.items()}
    for entity, types in load().declared_fields(system).items():
        for data_type, paths in types.items():
            renames = dict(zip(demo.get(entity, {}).get(data_type, ()), paths, strict=True))
            have = tuple(renames.get(p, p) for p in merged.setdefault(entity, {}).get(data_type, ()))
            merged[entity][data_type] = have + tuple(p for p in paths if p not in have)
    return merged


def column_hints(typed_paths: Mapping[str, Iterable[str]]) -> dict[str, dict[str, Any]]:
    """dlt column hints from ``{data_type: vendor paths}``: declared columns exist (typed) even while
    every value so far is null, so downstream SQL can rely on them."""
    return {
        path.replace(".", "__"): {"data_type": data_type, "nullable": True}
        for data_type, paths in typed_paths.items()
        for path in paths
    }
