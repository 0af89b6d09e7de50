"""Zendesk Support API reader (API mode of the support source).

``iter_records(config, entity, since)`` yields the Zendesk objects unchanged, as a landing file
``support/<entity>/<day>/part-*.json`` holds them (see docs/LANDING.md):

- ``organizations``: time-based incremental export ``/api/v2/incremental/organizations.json
  ?start_time=`` following ``next_page`` until ``end_of_stream``;
- ``tickets``: cursor incremental export ``/api/v2/incremental/tickets/cursor.json?start_time=``, then
  ``?cursor=<after_cursor>`` until ``end_of_stream``;
- ``ticket_metrics``: ``/api/v2/ticket_metrics.json``, offset pages via ``next_page`` (no time filter
  exists: ``since`` is ignored);
- ``satisfaction_ratings``: ``/api/v2/satisfaction_ratings.json?start_time=``, offset pages via
  ``next_page``.

Incremental exports can repeat an object across pages; nothing is dropped here, merge on ``id``.

Credentials: ``ZENDESK_BASE_URL`` (or ``ZENDESK_SUBDOMAIN``), ``ZENDESK_EMAIL``, ``ZENDESK_API_TOKEN``,
or in dlt secrets ``sources.support.zendesk_base_url`` / ``zendesk_subdomain`` / ``zendesk_email`` /
``zendesk_api_token``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    BaseReferencePaginator,
    JSONLinkPaginator,
)
from requests import Request, Response

from cs_kpis.sources.http import (
    VendorApiConfig,
    error_hook,
    iter_page_records,
    iter_pages,
    make_client,
    read_setting,
)
from cs_kpis.sources.records import RawRecord

SOURCE = "Zendesk"
SYSTEM = "support"

ENTITIES = ("organizations", "tickets", "ticket_metrics", "satisfaction_ratings")

_MAX_OFFSET_PAGE = 100  # offset-paginated endpoints allow per_page <= 100
_MAX_EXPORT_PAGE = 1000  # incremental exports allow per_page <= 1000


@dataclass(frozen=True, kw_only=True)
class ZendeskApiConfig(VendorApiConfig):
    """How to reach Zendesk. The API token never shows in ``repr``, logs or exception messages."""

    SYSTEM: ClassVar[str] = SYSTEM
    ENV_PREFIX: ClassVar[str] = "ZENDESK"

    base_url: str
    """``https://<subdomain>.zendesk.com``"""
    email: str
    api_token: str = field(repr=False)
    page_size: int = 100
    """``per_page`` (capped at 100 for offset pages, 1000 for incremental exports)"""
    max_retry_delay: float = 90.0
    """zendesk's Retry-After on incremental exports (about 10 requests/minute) can reach 60 s"""

    @classmethod
    def settings_from_env(cls, overrides: Any) -> dict[str, Any]:
        """``ZENDESK_BASE_URL`` or ``ZENDESK_SUBDOMAIN``, ``ZENDESK_EMAIL``, ``ZENDESK_API_TOKEN``; each also
        from dlt secrets (see the module docstring)."""
        base_url = read_setting("ZENDESK_BASE_URL", SYSTEM, required=False)
        if not base_url and "base_url" not in overrides:
            subdomain = read_setting("ZENDESK_SUBDOMAIN", SYSTEM, required=False)
            if not subdomain:
                raise ValueError(
                    "ZENDESK_BASE_URL or ZENDESK_SUBDOMAIN is not set: export one, or set "
                    "sources.support.zendesk_base_url in .dlt/secrets.toml"
                )
            base_url = f"https://{subdomain}.zendesk.com"
        return {
            "base_url": base_url,
            "email": read_setting("ZENDESK_EMAIL", SYSTEM),
            "api_token": read_setting("ZENDESK_API_TOKEN", SYSTEM),
        }


class ZendeskTimeExportPaginator(JSONLinkPaginator):
    """Time-based incremental export: follow ``next_page`` until ``end_of_stream``.

    ``next_page`` is set even on the last page (it is where the next run would start), so
    ``end_of_stream`` is what ends the loop.
    """

    def __init__(self) -> None:
        super().__init__(next_url_path="next_page")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Take ``next_page`` unless ``end_of_stream``."""
        super().update_state(response, data)
        if response.json().get("end_of_stream", True):
            self._next_reference = None


class ZendeskCursorExportPaginator(BaseReferencePaginator):
    """Cursor-based incremental export: ``cursor=<after_cursor>`` until ``end_of_stream``."""

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Take ``after_cursor`` unless ``end_of_stream``."""
        body = response.json()
        cursor = body.get("after_cursor")
        self._next_reference = None if body.get("end_of_stream", True) or not cursor else cursor

    def update_request(self, request: Request) -> None:
        """Replace ``start_time`` by ``cursor``: the api takes one or the other."""
        params = dict(request.params or {})
        params.pop("start_time", None)
        params["cursor"] = self._next_reference
        request.params = params


def iter_records(config: ZendeskApiConfig, entity: str, since: int | None = None) -> Iterator[RawRecord]:
    """Yield every object of one Zendesk entity, unchanged, as a :class:`RawRecord`.

    Args:
        config: where and how to connect.
        entity: ``organizations``, ``tickets``, ``ticket_metrics`` or ``satisfaction_ratings``.
        since: Unix seconds, sent as ``start_time`` (exports: updated since; satisfaction ratings: the
            oldest rating). None: from the beginning (``start_time=0`` for the exports). Ignored for
            ``ticket_metrics``, which has no time filter.

    Raises:
        ValueError: unknown entity.
        VendorAuthError: the credentials were rejected (401/403), at once, without retries.
        VendorApiError: another error status, after the retries for 429/5xx ran out.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown Zendesk entity {entity!r}; expected one of {list(ENTITIES)}")
    start_time = int(since) if since is not None else 0
    export_page = max(1, min(int(config.page_size), _MAX_EXPORT_PAGE))
    offset_page = max(1, min(int(config.page_size), _MAX_OFFSET_PAGE))
    path: str
    params: dict[str, Any]
    paginator: BasePaginator
    if entity == "organizations":
        path = "/api/v2/incremental/organizations.json"
        params = {"start_time": start_time, "per_page": export_page}
        paginator = ZendeskTimeExportPaginator()
    elif entity == "tickets":
        path = "/api/v2/incremental/tickets/cursor.json"
        params = {"start_time": start_time, "per_page": export_page}
        paginator = ZendeskCursorExportPaginator()
    elif entity == "ticket_metrics":
        path = "/api/v2/ticket_metrics.json"
        params = {"per_page": offset_page}
        paginator = JSONLinkPaginator(next_url_path="next_page")
    else:
        path = "/api/v2/satisfaction_ratings.json"
        params = {"per_page": offset_page}
        if since is not None:
            params["start_time"] = start_time
        paginator = JSONLinkPaginator(next_url_path="next_page")

    secrets = [config.api_token]
    client = make_client(
        base_url=config.base_url,
        # zendesk api-token auth: user "<email>/token", password = the token
        auth=HttpBasicAuth(f"{config.email}/token", config.api_token),
        headers={"Accept": "application/json"},
        **config.client_settings(),
    )
    pages = iter_pages(
        client,
        path,
        params=params,
        paginator=paginator,
        data_selector=entity,
        hook=error_hook(SOURCE, "ZENDESK_EMAIL and ZENDESK_API_TOKEN", secrets),
        secrets=secrets,
    )
    yield from iter_page_records(pages)
