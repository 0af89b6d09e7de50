"""Delighted API reader (API mode of the NPS source).

``iter_records(config, "survey_responses", since)`` pages through ``/v1/survey_responses.json``
(``per_page``, ``page`` from 1, ``updated_since``) and yields the responses unchanged, as a landing file
``nps/survey_responses/<day>/part-*.json`` holds them (see docs/LANDING.md). The API answers with a
bare JSON array and has no "more" flag, so paging stops at the first empty page.

Credentials: ``DELIGHTED_API_KEY`` (optional ``DELIGHTED_BASE_URL``), or in dlt secrets
``sources.nps.delighted_api_key`` / ``sources.nps.delighted_base_url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

from cs_kpis.sources.http import (
    VendorApiConfig,
    error_hook,
    iter_page_records,
    iter_pages,
    make_client,
    read_setting,
)
from cs_kpis.sources.records import RawRecord

SOURCE = "Delighted"
SYSTEM = "nps"

ENTITIES = ("survey_responses",)

_MAX_PER_PAGE = 100


@dataclass(frozen=True, kw_only=True)
class DelightedApiConfig(VendorApiConfig):
    """How to reach Delighted. The key never shows in ``repr``, logs or exception messages."""

    SYSTEM: ClassVar[str] = SYSTEM
    ENV_PREFIX: ClassVar[str] = "DELIGHTED"

    base_url: str = "https://api.delighted.com"
    api_key: str = field(repr=False)
    page_size: int = 100
    """``per_page`` (Delighted allows at most 100)"""

    @classmethod
    def settings_from_env(cls, overrides: Any) -> dict[str, Any]:
        """``DELIGHTED_API_KEY`` (and optional ``DELIGHTED_BASE_URL``), or dlt secrets."""
        return {
            "api_key": read_setting("DELIGHTED_API_KEY", SYSTEM),
            "base_url": read_setting("DELIGHTED_BASE_URL", SYSTEM, required=False, default=cls.base_url),
        }


def iter_records(
    config: DelightedApiConfig, entity: str = "survey_responses", since: int | None = None
) -> Iterator[RawRecord]:
    """Yield every Delighted survey response, unchanged, as a :class:`RawRecord`.

    Args:
        config: where and how to connect.
        entity: ``survey_responses`` (the only one).
        since: Unix seconds, sent as ``updated_since``. None: all responses.

    Raises:
        ValueError: unknown entity.
        VendorAuthError: the key was rejected (401/403), at once, without retries.
        VendorApiError: another error status, after the retries for 429/5xx ran out.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown Delighted entity {entity!r}; expected one of {list(ENTITIES)}")
    params: dict[str, Any] = {"per_page": max(1, min(int(config.page_size), _MAX_PER_PAGE))}
    if since is not None:
        params["updated_since"] = int(since)
    secrets = [config.api_key]
    client = make_client(
        base_url=config.base_url,
        # delighted: the api key is the basic-auth user name, the password is empty
        auth=HttpBasicAuth(config.api_key, ""),
        headers={"Accept": "application/json"},
        **config.client_settings(),
    )
    pages = iter_pages(
        client,
        "/v1/survey_responses.json",
        params=params,
        paginator=PageNumberPaginator(
            base_page=1, page_param="page", total_path=None, stop_after_empty_page=True
        ),
        data_selector="$",
        hook=error_hook(SOURCE, "DELIGHTED_API_KEY", secrets),
        secrets=secrets,
    )
    yield from iter_page_records(pages)
