"""A fake of the Stripe, Salesforce, Zendesk and Delighted HTTP APIs, serving a landing folder.

It loads the objects of a landing folder (layout in docs/LANDING.md; each object merged by id across
extract days, the latest day winning) and serves them through the vendors' real endpoints, envelopes
and pagination, with a small page size so that every listing spans several pages:

- Stripe ``/v1/{customers,products,prices,coupons,subscriptions,invoices,events,invoiceitems}``: newest
  first, ``limit``/``starting_after``/``has_more``, ``created[gte|gt|lte|lt]`` (invoice items: their
  ``date``), ``status`` (subscriptions: the default leaves out canceled ones), ``types[]`` (events),
  ``pending`` (invoice items: true lists only those not yet on an invoice), ``expand[]=data.discounts``
  (without it, discounts collapse to ids; the same for items' and lines' own discounts with
  ``data.items.data.discounts`` and ``data.lines.data.discounts``, and ``data.discounts`` on the nested
  lists), ``data.tiers`` (prices) and ``data.currency_options`` (coupons) (without them the field is left out); nested ``items``/``lines`` truncated to ``nested_page_size`` with
  ``has_more: true``, served in full by ``/v1/subscription_items?subscription=`` and
  ``/v1/invoices/{id}/lines``. Bearer auth.
- Salesforce ``/services/data/vNN.0/query|queryAll?q=SELECT … FROM X [WHERE f op literal] [ORDER BY f]``:
  records projected on the selected fields (plus ``attributes``), ``nextRecordsUrl`` (relative) until
  ``done``; ``query`` hides ``IsDeleted`` rows. ``AccountHistory`` (field history) is served like the
  others, filtered and ordered on ``CreatedDate``. Bearer auth.
- Zendesk ``/api/v2/incremental/organizations.json`` (time-based: ``next_page``, ``end_of_stream``,
  ``end_time``), ``/api/v2/incremental/tickets/cursor.json`` (``after_cursor``, ``end_of_stream``),
  ``/api/v2/ticket_metrics.json`` and ``/api/v2/satisfaction_ratings.json`` (offset ``next_page``).
  Basic auth ``<email>/token:<token>``.
- Delighted ``/v1/survey_responses.json`` (``per_page``, ``page``, ``since``, ``updated_since``): a
  bare array. Basic auth ``<api key>:``.

A wrong or missing credential gets a 401 with the vendor's error JSON. :meth:`VendorServer.fail`
injects error statuses (429 with ``Retry-After``, 500, ...) on a path; every request is recorded in
:attr:`VendorServer.requests` (with its time) so tests can check retries, waits and credentials.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

STRIPE_API_KEY = "sk_test_FAKEvalidKey0000000000001234"
SALESFORCE_ACCESS_TOKEN = "00DFAKE0000000!AQcAQFakeValidSessionToken"
ZENDESK_EMAIL = "api-user@example.com"
ZENDESK_API_TOKEN = "zdFakeValidToken0000000000000000000000"
DELIGHTED_API_KEY = "dlFakeValidKey00000000000000000"

STRIPE_ENTITIES = (
    "customers", "products", "prices", "coupons", "subscriptions", "invoices", "events", "invoiceitems"
)
SALESFORCE_OBJECTS = ("Account", "User", "Contact", "Opportunity", "AccountHistory")
ZENDESK_ENTITIES = ("organizations", "tickets", "ticket_metrics", "satisfaction_ratings")


# --------------------------------------------------------------------------------------------------
# landing folder


def load_landing(landing_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Load a landing folder's vendor objects: ``{"billing/customers": [...], "crm/Account": [...], ...}``.

    Extract days are applied in date order and parts in number order, merging on the primary key
    (``Id`` for Salesforce, ``id`` elsewhere), so the latest state of each object wins. Objects
    without a key (bad input) cannot be paginated by id and are left out.
    """
    root = Path(landing_dir)
    out: dict[str, list[dict[str, Any]]] = {}
    for system, entities, key in (
        ("billing", STRIPE_ENTITIES, "id"),
        ("crm", SALESFORCE_OBJECTS, "Id"),
        ("support", ZENDESK_ENTITIES, "id"),
        ("nps", ("survey_responses",), "id"),
    ):
        for entity in entities:
            merged: dict[Any, dict[str, Any]] = {}
            for day_dir in sorted(p for p in (root / system / entity).glob("*") if p.is_dir()):
                for part in sorted(day_dir.glob("part-*.json")):
                    for obj in _objects_of(json.loads(part.read_text()), system, entity):
                        if isinstance(obj, dict) and obj.get(key) is not None:
                            merged[obj[key]] = obj
            out[f"{system}/{entity}"] = list(merged.values())
    return out


def _objects_of(envelope: Any, system: str, entity: str) -> list[Any]:
    if system == "nps":
        return envelope
    if system == "billing":
        return envelope["data"]
    if system == "crm":
        return envelope["records"]
    return envelope[entity]


# --------------------------------------------------------------------------------------------------
# server


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    vendor: str | None
    authorized: bool
    at: float
    """``time.monotonic()`` on arrival"""
    status: int = 0


@dataclass
class _Fault:
    path: str
    statuses: list[int]
    retry_after: str | None
    query_contains: str | None
    prefix: bool


@dataclass
class Credentials:
    """The one valid credential per vendor; anything else gets a 401."""

    stripe_api_key: str = STRIPE_API_KEY
    salesforce_access_token: str = SALESFORCE_ACCESS_TOKEN
    zendesk_email: str = ZENDESK_EMAIL
    zendesk_api_token: str = ZENDESK_API_TOKEN
    delighted_api_key: str = DELIGHTED_API_KEY


class ApiError(Exception):
    """Raised inside a route to answer with ``status`` and a vendor-shaped ``body``."""

    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class VendorServer:
    """Serve a landing folder through fake vendor APIs on ``127.0.0.1:<ephemeral port>``.

    Use as a context manager, or :func:`serve_landing`. ``page_size`` caps every page (whatever the
    client asks for); ``nested_page_size`` caps Stripe's embedded ``items``/``lines`` lists.
    """

    landing_dir: str | Path
    page_size: int = 2
    nested_page_size: int = 2
    credentials: Credentials = field(default_factory=Credentials)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = load_landing(self.landing_dir)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sf_cursors: dict[str, list[dict[str, Any]]] = {}

    # lifecycle --------------------------------------------------------------------------------
    def start(self) -> VendorServer:
        """Bind to an ephemeral port on 127.0.0.1 and serve in a background thread."""
        handler = type("BoundHandler", (_Handler,), {"vendor_server": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            # a short poll interval keeps stop() (and so each test's teardown) fast
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="vendor-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the base URL for every vendor."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # test controls ----------------------------------------------------------------------------
    def fail(
        self,
        path: str,
        statuses: list[int] | tuple[int, ...],
        *,
        retry_after: str | None = "1",
        query_contains: str | None = None,
        prefix: bool = False,
    ) -> None:
        """Answer the next requests to ``path`` with ``statuses``, one each, then serve normally.

        ``retry_after`` is sent with 429s (integer seconds, as the vendors do). ``query_contains``
        restricts the fault to requests whose raw query string contains it (e.g. a later page);
        ``prefix`` matches every path starting with ``path`` (e.g. Salesforce query locators).
        """
        with self._lock:
            self._faults.append(_Fault(path, list(statuses), retry_after, query_contains, prefix))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path is ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _take_fault(self, path: str, raw_query: str) -> tuple[int, str | None] | None:
        with self._lock:
            for fault in self._faults:
                matches = path.startswith(fault.path) if fault.prefix else path == fault.path
                if matches and fault.statuses:
                    if fault.query_contains and fault.query_contains not in raw_query:
                        continue
                    return fault.statuses.pop(0), fault.retry_after
        return None

    # dispatch ---------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: ``(status, JSON body, extra headers)``."""
        split = urlsplit(raw_path)
        path, raw_query = split.path, split.query
        query = parse_qs(raw_query, keep_blank_values=True)
        vendor = _vendor_of(path)
        authorized = vendor is not None and self._authorized(vendor, headers.get("Authorization"))
        record = RecordedRequest(method, path, query, dict(headers), vendor, authorized, time.monotonic())
        with self._lock:
            self.requests.append(record)
        try:
            status, body, extra = self._answer(method, path, raw_query, query, vendor, authorized, headers)
        except Exception as e:  # noqa: BLE001 - a bug in the fake should show up as a 500, not a dropped connection
            status, body, extra = 500, {"error": f"fake server error: {e!r}"}, {}
        record.status = status
        return status, body, extra

    def _answer(
        self,
        method: str,
        path: str,
        raw_query: str,
        query: dict[str, list[str]],
        vendor: str | None,
        authorized: bool,
        headers: dict[str, str],
    ) -> tuple[int, Any, dict[str, str]]:
        if vendor is None:
            return 404, {"error": "not found"}, {}
        if not authorized:
            return 401, _auth_error(vendor, headers.get("Authorization")), {}
        fault = self._take_fault(path, raw_query)
        if fault is not None:
            status, retry_after = fault
            extra = {"Retry-After": retry_after} if status == 429 and retry_after is not None else {}
            return status, _error_body(vendor, status), extra
        if method != "GET":
            return 405, _error_body(vendor, 405), {}
        try:
            if vendor == "stripe":
                body = self._stripe(path, query)
            elif vendor == "salesforce":
                body = self._salesforce(path, query)
            elif vendor == "zendesk":
                body = self._zendesk(path, query)
            else:
                body = self._delighted(query)
        except ApiError as e:
            return e.status, e.body, {}
        return 200, body, {}

    def _authorized(self, vendor: str, header: str | None) -> bool:
        c = self.credentials
        expected = {
            "stripe": f"Bearer {c.stripe_api_key}",
            "salesforce": f"Bearer {c.salesforce_access_token}",
            "zendesk": basic_auth(f"{c.zendesk_email}/token", c.zendesk_api_token),
            "delighted": basic_auth(c.delighted_api_key, ""),
        }[vendor]
        return header == expected

    # stripe -----------------------------------------------------------------------------------
    def _stripe(self, path: str, query: dict[str, list[str]]) -> Any:
        if path == "/v1/subscription_items":
            sub_id = _one(query, "subscription")
            sub = _find(self.data["billing/subscriptions"], "id", sub_id)
            if sub is None:
                raise ApiError(400, _stripe_error(f"No such subscription: '{sub_id}'", param="subscription"))
            envelope = self._stripe_list(sub["items"]["data"], query, "/v1/subscription_items", sort=False)
            return self._nested_discounts(envelope, "data.discounts" in query.get("expand[]", []))
        m = re.fullmatch(r"/v1/invoices/([^/]+)/lines", path)
        if m:
            invoice = _find(self.data["billing/invoices"], "id", m.group(1))
            if invoice is None:
                raise ApiError(404, _stripe_error(f"No such invoice: '{m.group(1)}'", param="invoice"))
            envelope = self._stripe_list(invoice["lines"]["data"], query, path, sort=False)
            return self._nested_discounts(envelope, "data.discounts" in query.get("expand[]", []))
        m = re.fullmatch(r"/v1/(\w+)", path)
        if not m or m.group(1) not in STRIPE_ENTITIES:
            raise ApiError(404, _stripe_error(f"Unrecognized request URL (GET: {path}).", param=None))
        entity = m.group(1)
        objects = [o for o in self.data[f"billing/{entity}"] if _created_matches(o, query)]
        if entity == "subscriptions":
            status = _one(query, "status")
            if status is None:
                objects = [o for o in objects if o.get("status") not in ("canceled", "incomplete_expired")]
            elif status != "all":
                objects = [o for o in objects if o.get("status") == status]
        if entity == "events":
            types = query.get("types[]") or ([_one(query, "type")] if _one(query, "type") else [])
            if types:
                objects = [
                    o for o in objects if any(fnmatch.fnmatchcase(o.get("type", ""), t) for t in types)
                ]
        if entity == "invoiceitems" and _one(query, "pending") is not None:
            pending = _one(query, "pending") == "true"
            objects = [o for o in objects if (o.get("invoice") is None) == pending]
        envelope = self._stripe_list(objects, query, path, sort=True)
        expand = set(query.get("expand[]", []))
        served = []
        for obj in envelope["data"]:
            obj = copy.deepcopy(obj)
            if entity == "subscriptions":
                if "data.discounts" not in expand and isinstance(obj.get("discounts"), list):
                    # stripe sends discount ids unless asked to expand them
                    obj["discounts"] = [d.get("id") if isinstance(d, dict) else d for d in obj["discounts"]]
                # and each item's own discounts, unless asked for data.items.data.discounts
                self._nested_discounts(obj.get("items"), "data.items.data.discounts" in expand)
                self._truncate(obj, "items")
            elif entity == "invoices":
                if "data.discounts" not in expand and isinstance(obj.get("discounts"), list):
                    obj["discounts"] = [d.get("id") if isinstance(d, dict) else d for d in obj["discounts"]]
                self._nested_discounts(obj.get("lines"), "data.lines.data.discounts" in expand)
                self._truncate(obj, "lines")
            elif entity == "prices" and "data.tiers" not in expand:
                # stripe includes a price's tiers only when asked
                obj.pop("tiers", None)
            elif entity == "coupons" and "data.currency_options" not in expand:
                # and a coupon's currency_options only when asked
                obj.pop("currency_options", None)
            served.append(obj)
        envelope["data"] = served
        return envelope

    def _stripe_list(
        self, objects: list[dict[str, Any]], query: dict[str, list[str]], url: str, *, sort: bool
    ):
        if sort:
            # stripe lists newest first
            objects = sorted(
                objects, key=lambda o: (o.get("created") or o.get("date") or 0, str(o.get("id"))), reverse=True
            )
        limit = int(_one(query, "limit") or 10)
        if not 1 <= limit <= 100:
            raise ApiError(
                400, _stripe_error("Invalid integer: limit must be between 1 and 100", param="limit")
            )
        limit = min(limit, self.page_size)
        after = _one(query, "starting_after")
        if after is not None:
            ids = [o.get("id") for o in objects]
            if after not in ids:
                raise ApiError(400, _stripe_error(f"No such object: '{after}'", param="starting_after"))
            objects = objects[ids.index(after) + 1 :]
        return {"object": "list", "data": objects[:limit], "has_more": len(objects) > limit, "url": url}

    @staticmethod
    def _nested_discounts(envelope: Any, expanded: bool) -> Any:
        """The discounts of each item or line of a list envelope as ids, unless they were asked expanded
        (a copy: the stored objects keep them whole)."""
        if expanded or not isinstance(envelope, dict):
            return envelope
        rows = []
        for row in envelope.get("data") or []:
            if isinstance(row, dict) and isinstance(row.get("discounts"), list):
                row = {**row, "discounts": [d.get("id") if isinstance(d, dict) else d for d in row["discounts"]]}
            rows.append(row)
        envelope["data"] = rows
        return envelope

    def _truncate(self, obj: dict[str, Any], key: str) -> None:
        nested = obj.get(key)
        if isinstance(nested, dict) and len(nested.get("data") or []) > self.nested_page_size:
            nested["data"] = nested["data"][: self.nested_page_size]
            nested["has_more"] = True

    # salesforce -------------------------------------------------------------------------------
    def _salesforce(self, path: str, query: dict[str, list[str]]) -> Any:
        m = re.fullmatch(r"/services/data/(v\d+\.\d+)/(query|queryAll)(?:/([\w-]+))?/?", path)
        if not m:
            raise ApiError(
                404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
            )
        version, kind, locator = m.groups()
        if locator:
            cursor_id, _, offset = locator.rpartition("-")
            records = self._sf_cursors.get(cursor_id)
            if records is None or not offset.isdigit():
                raise ApiError(
                    400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}]
                )
            return self._sf_page(version, cursor_id, records, int(offset))
        q = _one(query, "q")
        if not q:
            raise ApiError(400, [{"errorCode": "MALFORMED_QUERY", "message": "q parameter is required"}])
        records = self._soql(q, include_deleted=kind == "queryAll")
        with self._lock:
            cursor_id = f"01gFAKE{len(self._sf_cursors):011d}"
            self._sf_cursors[cursor_id] = records
        return self._sf_page(version, cursor_id, records, 0)

    def _sf_page(self, version: str, cursor_id: str, records: list[dict[str, Any]], offset: int) -> Any:
        end = offset + self.page_size
        body: dict[str, Any] = {
            "totalSize": len(records),
            "done": end >= len(records),
            "records": records[offset:end],
        }
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor_id}-{end}"
        return body

    def _soql(self, q: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        m = re.fullmatch(
            r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
            r"(?:\s+WHERE\s+(?P<wf>\w+)\s*(?P<op>>=|<=|>|<|=)\s*(?P<val>\S+))?"
            r"(?:\s+ORDER\s+BY\s+(?P<of>\w+)(?:\s+(?P<dir>ASC|DESC))?)?\s*",
            q,
            flags=re.IGNORECASE | re.DOTALL,
        )
        if not m:
            raise ApiError(400, [{"errorCode": "MALFORMED_QUERY", "message": f"unsupported query: {q[:80]}"}])
        obj_name = next((o for o in SALESFORCE_OBJECTS if o.lower() == m["obj"].lower()), None)
        if obj_name is None:
            raise ApiError(
                400,
                [{"errorCode": "INVALID_TYPE", "message": f"sObject type '{m['obj']}' is not supported."}],
            )
        fields = [f.strip() for f in m["fields"].split(",")]
        records = [r for r in self.data[f"crm/{obj_name}"] if include_deleted or not r.get("IsDeleted")]
        if m["wf"]:
            literal = _sf_literal(m["val"])
            records = [r for r in records if _compare(_sf_value(r.get(m["wf"])), m["op"], literal)]
        if m["of"]:
            records = sorted(
                records,
                key=lambda r: (str(r.get(m["of"]) or ""), r["Id"]),
                reverse=(m["dir"] or "ASC").upper() == "DESC",
            )
        out = []
        for r in records:
            # fields a landing record lacks are left out rather than sent as null, so served
            # records equal landing records
            projected = {"attributes": r["attributes"]} if "attributes" in r else {}
            projected.update({f: r[f] for f in fields if f in r})
            out.append(projected)
        return out

    # zendesk ----------------------------------------------------------------------------------
    def _zendesk(self, path: str, query: dict[str, list[str]]) -> Any:
        if path == "/api/v2/incremental/organizations.json":
            return self._zd_time_export("organizations", query)
        if path == "/api/v2/incremental/tickets/cursor.json":
            return self._zd_cursor_export("tickets", query)
        if path == "/api/v2/ticket_metrics.json":
            return self._zd_offset("ticket_metrics", path, query, time_field=None)
        if path == "/api/v2/satisfaction_ratings.json":
            # start_time is "the time of the oldest satisfaction rating": a creation-time filter
            return self._zd_offset("satisfaction_ratings", path, query, time_field="created_at")
        raise ApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _zd_sorted_since(self, entity: str, start_time: int) -> list[dict[str, Any]]:
        objects = [o for o in self.data[f"support/{entity}"] if _iso_ts(o.get("updated_at")) >= start_time]
        return sorted(objects, key=lambda o: (_iso_ts(o.get("updated_at")), o["id"]))

    def _zd_start_time(self, query: dict[str, list[str]]) -> int:
        raw = _one(query, "start_time")
        if raw is None or not raw.lstrip("-").isdigit():
            raise ApiError(400, {"error": "InvalidValue", "description": "start_time is required"})
        return int(raw)

    def _zd_per_page(self, query: dict[str, list[str]], default: int) -> int:
        return max(1, min(int(_one(query, "per_page") or default), self.page_size))

    def _zd_time_export(self, entity: str, query: dict[str, list[str]]) -> Any:
        start_time = self._zd_start_time(query)
        skip = int(_one(query, "fake_skip") or 0)
        per_page = self._zd_per_page(query, 1000)
        objects = self._zd_sorted_since(entity, start_time)
        page = objects[skip : skip + per_page]
        end_time = _iso_ts(page[-1]["updated_at"]) if page else start_time
        served = skip + len(page)
        # the real next_page restarts at end_time and may repeat objects; this fake also says how
        # many objects stamped end_time were already served, so pages never overlap
        already = sum(1 for o in objects[:served] if _iso_ts(o.get("updated_at")) == end_time)
        params = {"per_page": per_page, "start_time": end_time}
        if already:
            params["fake_skip"] = already
        return {
            entity: page,
            "next_page": f"{self.base_url}/api/v2/incremental/{entity}.json?{urlencode(params)}",
            "end_of_stream": served >= len(objects),
            "end_time": end_time,
            "count": len(page),
        }

    def _zd_cursor_export(self, entity: str, query: dict[str, list[str]]) -> Any:
        cursor = _one(query, "cursor")
        if cursor is not None:
            try:
                state = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
                start_time, offset = int(state["s"]), int(state["o"])
            except Exception as e:
                raise ApiError(
                    400, {"error": "InvalidPaginationParameter", "description": "bad cursor"}
                ) from e
        else:
            start_time, offset = self._zd_start_time(query), 0
        per_page = self._zd_per_page(query, 1000)
        objects = self._zd_sorted_since(entity, start_time)
        page = objects[offset : offset + per_page]
        after = _zd_cursor(start_time, offset + len(page))
        before = _zd_cursor(start_time, offset) if offset else None
        url = f"{self.base_url}/api/v2/incremental/{entity}/cursor.json"
        return {
            entity: page,
            "after_cursor": after,
            "after_url": f"{url}?{urlencode({'cursor': after, 'per_page': per_page})}",
            "before_cursor": before,
            "before_url": f"{url}?{urlencode({'cursor': before, 'per_page': per_page})}" if before else None,
            "end_of_stream": offset + len(page) >= len(objects),
        }

    def _zd_offset(
        self, entity: str, path: str, query: dict[str, list[str]], *, time_field: str | None
    ) -> Any:
        objects = sorted(self.data[f"support/{entity}"], key=lambda o: o["id"])
        if time_field is not None and _one(query, "start_time") is not None:
            start_time = self._zd_start_time(query)
            objects = [o for o in objects if _iso_ts(o.get(time_field)) >= start_time]
        per_page = self._zd_per_page(query, 100)
        page_no = max(1, int(_one(query, "page") or 1))
        start = (page_no - 1) * per_page
        page = objects[start : start + per_page]
        keep = {k: v[0] for k, v in query.items() if k not in ("page", "per_page")}

        def url(n: int) -> str:
            return f"{self.base_url}{path}?{urlencode({**keep, 'page': n, 'per_page': per_page})}"

        return {
            entity: page,
            "next_page": url(page_no + 1) if start + per_page < len(objects) else None,
            "previous_page": url(page_no - 1) if page_no > 1 else None,
            "count": len(objects),
        }

    # delighted --------------------------------------------------------------------------------
    def _delighted(self, query: dict[str, list[str]]) -> Any:
        objects = self.data["nps/survey_responses"]
        for param, fld in (("since", "created_at"), ("updated_since", "updated_at")):
            if _one(query, param) is not None:
                objects = [o for o in objects if int(o.get(fld) or 0) >= int(_one(query, param))]
        for param, fld in (("until", "created_at"), ("updated_until", "updated_at")):
            if _one(query, param) is not None:
                objects = [o for o in objects if int(o.get(fld) or 0) <= int(_one(query, param))]
        objects = sorted(objects, key=lambda o: (int(o.get("created_at") or 0), str(o["id"])))
        per_page = int(_one(query, "per_page") or 20)
        if not 1 <= per_page <= 100:
            raise ApiError(422, {"status": 422, "message": "per_page must be between 1 and 100"})
        per_page = min(per_page, self.page_size)
        page_no = max(1, int(_one(query, "page") or 1))
        return objects[(page_no - 1) * per_page : page_no * per_page]


@contextmanager
def serve_landing(landing_dir: str | Path, **kwargs: Any) -> Iterator[VendorServer]:
    """Run a :class:`VendorServer` for the duration of a ``with`` block."""
    server = VendorServer(landing_dir, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients dropping kept-alive connections at the end of a test is normal, not an error
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    vendor_server: VendorServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, nagle + delayed acks stall each response ~40 ms
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body, extra = self.vendor_server.handle(method, self.path, dict(self.headers.items()))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# helpers


def _vendor_of(path: str) -> str | None:
    if path == "/v1/survey_responses.json":
        return "delighted"
    if path.startswith("/v1/"):
        return "stripe"
    if path.startswith("/services/data/"):
        return "salesforce"
    if path.startswith("/api/v2/"):
        return "zendesk"
    return None


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth_error(vendor: str, header: str | None) -> Any:
    if vendor == "stripe":
        if not header:
            return _stripe_error("You did not provide an API key.", param=None)
        # stripe echoes a masked key, as here: the client must not put the body in its message
        tail = header[-4:]
        return _stripe_error(f"Invalid API Key provided: sk_test_****{tail}", param=None)
    if vendor == "salesforce":
        return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    if vendor == "zendesk":
        return {"error": "Couldn't authenticate you"}
    return {"status": 401, "message": "Invalid API key"}


def _error_body(vendor: str, status: int) -> Any:
    if vendor == "stripe":
        if status == 429:
            return {
                "error": {
                    "message": "Too many requests hit the API too quickly.",
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                }
            }
        return {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    if vendor == "salesforce":
        code = "REQUEST_LIMIT_EXCEEDED" if status == 429 else "UNKNOWN_EXCEPTION"
        return [{"message": f"fake error {status}", "errorCode": code}]
    if vendor == "zendesk":
        if status == 429:
            return {
                "error": "APIRateLimitExceeded",
                "description": "Number of allowed API requests per minute exceeded",
            }
        return {"error": "InternalError", "description": f"fake error {status}"}
    return {"status": status, "message": f"fake error {status}"}


def _stripe_error(message: str, *, param: str | None) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": "invalid_request_error"}
    if param:
        err["param"] = param
    return {"error": err}


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _find(objects: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any] | None:
    return next((o for o in objects if o.get(key) == value), None)


def _created_matches(obj: dict[str, Any], query: dict[str, list[str]]) -> bool:
    created = obj.get("created") or obj.get("date") or 0  # an invoice item has only its date
    for op, sym in (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<")):
        bound = _one(query, f"created[{op}]")
        if bound is not None and not _compare(created, sym, int(bound)):
            return False
    exact = _one(query, "created")
    return exact is None or created == int(exact)


def _compare(a: Any, op: str, b: Any) -> bool:
    if a is None:
        return False
    return {">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "=": a == b}[op]


def _iso_ts(value: str | None) -> int:
    """Zendesk ISO timestamp (``2012-09-06T20:15:09Z``) to Unix seconds; missing -> 0."""
    if not value:
        return 0
    return int(datetime.fromisoformat(value).timestamp())


def _sf_value(value: Any) -> Any:
    # salesforce datetimes look like 2025-12-16T13:05:30.000+0000; compare them as datetimes
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", value):
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    return value


def _sf_literal(literal: str) -> Any:
    if re.fullmatch(r"\d{4}-\d\d-\d\dT.*", literal):
        return datetime.fromisoformat(literal)
    if literal.lower() in ("true", "false"):
        return literal.lower() == "true"
    return literal.strip("'")


def _zd_cursor(start_time: int, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": start_time, "o": offset}).encode()).decode()
