"""Field contracts: the types and ranges of the vendor fields the pipeline uses, checked record by record.

Each system declares, from its vendor's documented schema, the fields that staging reads (settings.py
``CONTRACTS``). A record whose value does not fit is rejected (:class:`Reject` naming the field), which the
entity resource turns into a ``_quarantine`` row while the rest of the batch loads. Only when most records
of a batch fail on the same field does the load stop (:func:`contract_change`): that is a change of the
export, not a bad record.

Paths are dotted (``recurring.interval``); ``[]`` steps into every element of a list
(``items.data[].price.unit_amount``). A missing or null value passes unless the field is ``required``.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cs_kpis.sources.common.helpers import Reject, parse_unix

CONTRACT_CHANGE_SHARE = 0.5
"""a field rejected in more than this share of a batch's records stops the load"""
CONTRACT_CHANGE_MIN_RECORDS = 10
"""...and in at least this many records: one bad record in a tiny increment is a bad record, not a change"""

DATE_WINDOW_ENV = "CS_KPIS_PLAUSIBLE_DATES"
"""``YYYY-MM-DD..YYYY-MM-DD``: the dates a source accepts; outside it a record is quarantined"""
WINDOW_YEARS_BEFORE = 10
WINDOW_YEARS_AFTER = 10
"""default window: from 10 years before the manifest's ``start_date`` (the company's first data) to 10 years
after its last extract day; Stripe's future dates (trial ends, period ends, coupon ``redeem_by``) fit"""


@dataclass(frozen=True)
class DateWindow:
    """The plausible dates of a company's records, both ends included."""

    first: date
    last: date

    def check(self, value: datetime | date) -> None:
        day = value.date() if isinstance(value, datetime) else value
        if not self.first <= day <= self.last:
            raise Reject(f"date {day.isoformat()} outside the plausible window {self.first}..{self.last} "
                         f"(set {DATE_WINDOW_ENV} to change it)")

    @classmethod
    def parse(cls, text: str) -> "DateWindow":
        try:
            first, last = (date.fromisoformat(part.strip()) for part in text.split(".."))
        except ValueError as exc:
            raise ValueError(f"{DATE_WINDOW_ENV} must look like 2015-01-01..2035-12-31, got {text!r}") from exc
        return cls(first, last)


def _years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def date_window(manifest: Mapping[str, Any] | None = None, today: date | None = None) -> DateWindow:
    """The window from ``CS_KPIS_PLAUSIBLE_DATES``, else derived from the manifest (start date and last extract
    day), else around today (API mode without a landing folder)."""
    configured = os.environ.get(DATE_WINDOW_ENV, "").strip()
    if configured:
        return DateWindow.parse(configured)
    today = today or datetime.now(UTC).date()
    manifest = manifest or {}
    days = sorted(str(d) for d in manifest.get("extract_days") or [])
    try:
        start = date.fromisoformat(str(manifest.get("start_date") or days[0]))
    except (ValueError, IndexError):
        start = today - timedelta(days=365 * 20)
    last = date.fromisoformat(days[-1]) if days else today
    return DateWindow(_years(start, -WINDOW_YEARS_BEFORE), _years(last, WINDOW_YEARS_AFTER))


def landing_window(landing_dir: Any) -> Callable[[], DateWindow]:
    """The date window of a landing folder, computed on first use (at load time, not when the code location
    loads) from its manifest; without a readable manifest, the window around today."""
    cache: list[DateWindow] = []

    def get() -> DateWindow:
        if not cache:
            manifest = None
            if landing_dir is not None:
                from cs_kpis.sources.common.landing import read_manifest

                try:
                    manifest = read_manifest(landing_dir)
                except Exception:  # noqa: BLE001 - a missing or malformed manifest fails elsewhere, by name
                    manifest = None
            cache.append(date_window(manifest))
        return cache[0]

    return get


@dataclass(frozen=True)
class Field:
    """One vendor field: its kind, and optionally that it is required, its range or its allowed values.

    Kinds: ``text``, ``integer`` (JSON integer), ``number``, ``decimal`` (a decimal number as text), ``bool``,
    ``object``, ``list``, ``unix``
    (Unix seconds), ``iso`` (ISO-8601 with zone), ``sf_datetime`` (Salesforce ``...+0000``), ``date``
    (``YYYY-MM-DD``), ``currency`` (ISO code in reference/fx_rates.csv).
    """

    kind: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: frozenset[str] | None = None


def text(**kw: Any) -> Field:
    return Field("text", **kw)


def integer(**kw: Any) -> Field:
    return Field("integer", **kw)


def values_at(obj: Any, path: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of every value at ``path``; ``[]`` steps into list elements. A missing step
    yields the path with None (so a required field can be reported); a list step over a non-list yields
    nothing (the list field's own declaration catches that)."""
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    here = f"{prefix}{key}"
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if is_list:
        if not isinstance(value, list):
            return
        for index, element in enumerate(value):
            where = f"{here}[{index}]"
            if rest:
                yield from values_at(element, rest, f"{where}.")
            else:
                yield where, element
        return
    if rest:
        if value is None:
            yield f"{here}.{rest}", None
            return
        if not isinstance(value, Mapping):
            return  # the field itself is declared as an object, or the type tracking catches it
        yield from values_at(value, rest, f"{here}.")
        return
    yield here, value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Node:
    """One step of the declared paths: the field at this step (if declared) and the steps below it."""

    key: str
    is_list: bool
    spec: Field | None = None
    children: dict[str, "_Node"] | None = None
    required_below: str | None = None
    """the first required path below this step (reported when the step itself is missing)"""
    plain: type | None = None
    """the one Python type that fits ``spec`` without a closer look (:func:`_plain_type`), else None"""
    fits: Callable[[Any], bool] | None = None
    """True for a value that certainly fits ``spec``, decided without building a message
    (:meth:`Contract._fits`); False sends it to the full check, which words the rejection"""


def _compile(fields: Mapping[str, Field]) -> dict[str, _Node]:
    root: dict[str, _Node] = {}
    for path, spec in fields.items():
        level, steps = root, path.split(".")
        for index, step in enumerate(steps):
            node = level.get(step)
            if node is None:
                node = level[step] = _Node(step.removesuffix("[]"), step.endswith("[]"))
            if index == len(steps) - 1:
                node.spec = spec
                node.plain = _plain_type(spec)
            else:
                if spec.required and node.required_below is None:
                    node.required_below = ".".join(steps[index + 1:])
                node.children = node.children if node.children is not None else {}
                level = node.children
    return root


class Contract:
    """The declared fields of one vendor object, checked by :meth:`check`.

    The paths are compiled into a tree once, so a record is walked once whatever the number of fields
    (profiled on the demo's Stripe objects: path-by-path lookups cost more than reading them)."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        currencies: set[str] | None = None,
        window: "DateWindow | Callable[[], DateWindow] | None" = None,
        parsers: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.fields = dict(fields)
        self.currencies = currencies
        self.window = window
        self.parsers = dict(parsers or {})
        self._tree = _compile(self.fields)
        self._windows: list[Any] = []
        """the date window and its Unix seconds, once known (:meth:`_window`)"""
        nodes = list(self._tree.values())
        while nodes:
            node = nodes.pop()
            if node.spec is not None and node.plain is None:
                node.fits = self._fits(node.spec)
            nodes.extend((node.children or {}).values())

    def paths(self, prefix: str = "") -> dict[str, Field]:
        return {f"{prefix}{path}": spec for path, spec in self.fields.items()}

    def check(self, obj: Mapping[str, Any], prefix: str = "") -> None:
        """Raise :class:`Reject` (with ``field``) at the first declared field whose value does not fit."""
        self._walk(obj, self._tree, prefix)

    def _walk(self, obj: Any, level: dict[str, _Node], where: str) -> None:
        get = obj.get if isinstance(obj, dict) else _absent
        for node in level.values():
            value = get(node.key)
            if not node.is_list:
                spec = node.spec
                # the common cases (plain text, an integer or a flag without a range) without a call, the
                # others by a predicate (:meth:`_fits`) before the check that words a rejection
                if spec is not None and type(value) is not node.plain and (
                        spec.required if value is None else node.fits is None or not node.fits(value)):
                    self._check_value(f"{where}{node.key}", spec, value)
                if node.children is not None:
                    here = f"{where}{node.key}"
                    if value is None:
                        if node.required_below is not None:
                            missing = f"{here}.{node.required_below}"
                            raise Reject(f"required field {missing} is missing", field=_generic(missing))
                    elif isinstance(value, dict):
                        self._walk(value, node.children, f"{here}.")
                continue
            if not isinstance(value, list):
                continue
            here = f"{where}{node.key}"
            for index, element in enumerate(value):
                at = f"{here}[{index}]"
                if node.spec is not None and type(element) is not node.plain and (
                        node.spec.required if element is None else node.fits is None or not node.fits(element)):
                    self._check_value(at, node.spec, element)
                if node.children is not None:
                    if not isinstance(element, dict) and node.required_below is not None:
                        missing = f"{at}.{node.required_below}"
                        raise Reject(f"required field {missing} is missing", field=_generic(missing))
                    if isinstance(element, dict):
                        self._walk(element, node.children, f"{at}.")

    def _check_value(self, where: str, spec: Field, value: Any) -> None:
        if value is None:
            if spec.required:
                raise Reject(f"required field {where} is missing", field=_generic(where))
            return
        problem = self._problem(spec, value)
        if problem:
            raise Reject(f"field {where}: {problem}, got {value!r}"[:500], field=_generic(where))

    def _fits(self, spec: Field) -> Callable[[Any], bool] | None:
        """A predicate true for a value that :meth:`_problem` accepts (a value it may reject gives False, and
        the full check then decides): the kind's checks without building a message, and for Unix seconds
        given as an integer the window compared in seconds, without a datetime. None: always the full check."""
        kind, low, high, choices, required = spec.kind, spec.min, spec.max, spec.choices, spec.required

        def in_range(value: Any) -> bool:  # written as _range_problem compares (a NaN is in range)
            return not (low is not None and value < low) and not (high is not None and value > high)

        if kind == "text":
            return lambda v: (type(v) is str and (not required or bool(v.strip()))
                              and (choices is None or v in choices))
        if kind == "integer":
            return lambda v: type(v) is int and in_range(v)
        if kind == "number":
            return lambda v: (type(v) is int or type(v) is float) and in_range(v)
        if kind == "currency":
            currencies = self.currencies
            return lambda v: (type(v) is str and len(v) == 3 and v.isalpha()
                              and (currencies is None or v.lower() in currencies))
        parse = self.parsers.get(kind)
        if parse is None or kind == "decimal":
            return None

        def fits_parsed(value: Any) -> bool:
            # a time or a date in the window (what _problem accepts, for any parser's Reject or value)
            try:
                parsed = parse(value)
            except Reject:
                return False
            window = self._window()
            if window is None:
                return False
            day = parsed.date() if type(parsed) is datetime else parsed if type(parsed) is date else None
            return day is not None and window.first <= day <= window.last

        if kind == "unix" and parse is parse_unix:
            def fits_unix(value: Any) -> bool:
                # Unix seconds as an integer: the window compared in seconds, without a datetime
                if type(value) is not int:
                    return fits_parsed(value)
                bounds = self._window(seconds=True)
                return bounds is not None and bounds[0] <= value < bounds[1]

            return fits_unix
        return fits_parsed

    def _window(self, seconds: bool = False) -> Any:
        """The date window (``seconds``: as Unix seconds, :func:`_unix_bounds`), known on first use."""
        if not self._windows:
            window = self.window() if callable(self.window) else self.window
            self._windows.extend((window, _unix_bounds(window)))
        return self._windows[seconds]

    def _problem(self, spec: Field, value: Any) -> str | None:
        kind = spec.kind
        if kind == "text":
            if not isinstance(value, str):
                return "expected text"
            if spec.required and not value.strip():
                return "expected non-empty text"
            if spec.choices is not None and value not in spec.choices:
                return f"expected one of {', '.join(sorted(spec.choices))}"
            return None
        if kind == "integer":
            if not _is_int(value):
                return "expected an integer"
            return _range_problem(spec, value)
        if kind == "number":
            if not _is_number(value):
                return "expected a number"
            return _range_problem(spec, value)
        if kind == "bool":
            return None if isinstance(value, bool) else "expected true or false"
        if kind == "object":
            return None if isinstance(value, Mapping) else "expected an object"
        if kind == "list":
            return None if isinstance(value, list) else "expected a list"
        if kind == "currency":
            if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
                return "expected a 3-letter currency code"
            if self.currencies is not None and value.lower() not in self.currencies:
                return "unknown currency (not in reference/fx_rates.csv)"
            return None
        parse = self.parsers.get(kind)
        if parse is None:
            raise ValueError(f"unknown field kind {kind!r}")
        try:
            parsed = parse(value)
        except Reject as exc:
            return str(exc)
        if isinstance(parsed, float):
            return _range_problem(spec, parsed)
        window = self.window() if callable(self.window) else self.window
        if window is not None and isinstance(parsed, date):
            try:
                window.check(parsed)
            except Reject as exc:
                return str(exc)
        return None


def _absent(key: str) -> None:
    """``get`` of a value that is not an object: every field below it is missing (None)."""


def _unix_bounds(window: DateWindow | None) -> tuple[int, int] | None:
    """``window`` as Unix seconds ``[first 00:00, last + 1 day 00:00)`` UTC: an integer in it is a time whose UTC
    date is in the window (what parsing it and :meth:`DateWindow.check` accept); None without a window."""
    if window is None:
        return None
    try:
        first = datetime(window.first.year, window.first.month, window.first.day, tzinfo=UTC)
        end = datetime(window.last.year, window.last.month, window.last.day, tzinfo=UTC) + timedelta(days=1)
    except OverflowError:
        return None
    return int(first.timestamp()), int(end.timestamp())


def _plain_type(spec: Field) -> type | None:
    """The common case decided without building a message: a value of exactly this type fits ``spec`` (plain
    text, an integer without a range, a flag, an object); None when every value goes through
    :meth:`Contract._problem` (ranges, choices, required text, parsed kinds)."""
    kind = spec.kind
    if kind == "text":
        return str if spec.choices is None and not spec.required else None
    if kind == "integer":
        return int if spec.min is None and spec.max is None else None
    return {"bool": bool, "object": dict, "list": list}.get(kind)


def _range_problem(spec: Field, value: float) -> str | None:
    if spec.min is not None and value < spec.min:
        return f"below the minimum {spec.min:g}"
    if spec.max is not None and value > spec.max:
        return f"above the maximum {spec.max:g}"
    return None


def _generic(where: str) -> str:
    """``items.data[3].quantity`` -> ``items.data[].quantity``: the field, whichever element failed."""
    out, depth = [], 0
    for char in where:
        if char == "[":
            depth += 1
            out.append("[]")
            continue
        if char == "]":
            depth -= 1
            continue
        if depth == 0:
            out.append(char)
    return "".join(out)


def default_parsers() -> dict[str, Callable[[Any], Any]]:
    from cs_kpis.sources.common.helpers import parse_date, parse_iso, parse_salesforce_datetime, parse_unix

    return {"unix": parse_unix, "iso": parse_iso, "sf_datetime": parse_salesforce_datetime, "date": parse_date,
            "decimal": parse_decimal_text}


def parse_decimal_text(value: Any) -> float:
    """A decimal number sent as a string (Stripe's ``unit_amount_decimal``, up to 12 decimal places): a
    number sent as JSON number, or text that is not a plain decimal, is rejected."""
    if not isinstance(value, str):
        raise Reject("expected a decimal number as text")
    text = value.strip()
    body = text[1:] if text[:1] in "+-" else text
    if not body or body.count(".") > 1 or not body.replace(".", "").isdigit():
        raise Reject("expected a decimal number as text")
    return float(text)


def contract_change(
    entity: str, field_rejects: Mapping[str, list[str]], records: int
) -> str | None:
    """The error message when a field was rejected in most records of a batch; None otherwise.

    ``field_rejects``: field -> where each rejection happened (``file (position n)``)."""
    for field_name, places in sorted(field_rejects.items(), key=lambda kv: -len(kv[1])):
        count = len(places)
        if records and count >= CONTRACT_CHANGE_MIN_RECORDS and count / records > CONTRACT_CHANGE_SHARE:
            files = sorted({place.split(" (position")[0] for place in places})
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more files" if len(files) > 3 else "")
            return (
                f"{entity}: contract change in field {field_name!r}: {count} of {records} records "
                f"({count / records:.0%}) do not fit its declared type or are missing it, in {shown}; "
                "this is a change of the export, not a bad record, so the load stops. Fix the export or "
                "the field's declaration (CONTRACTS in the system's settings.py)"
            )
    return None
