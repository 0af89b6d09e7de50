"""Salesforce REST API reader (API mode of the CRM source).

``iter_records(config, entity, since)`` runs one SOQL query through ``/services/data/vNN.0/queryAll``
(so soft-deleted rows come back with ``IsDeleted: true``) and yields the records unchanged, as a
landing file ``crm/<Object>/<day>/part-*.json`` holds them (see docs/LANDING.md): with their
``attributes``, and exactly the fields in :data:`SOQL_FIELDS`.

Credentials: ``SALESFORCE_INSTANCE_URL`` and ``SALESFORCE_ACCESS_TOKEN`` (an OAuth access token; getting
or refreshing it is not done here), or in dlt secrets ``sources.crm.salesforce_instance_url`` /
``sources.crm.salesforce_access_token``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from requests import Response

from cs_kpis.sources.http import (
    VendorApiConfig,
    error_hook,
    iter_page_records,
    iter_pages,
    make_client,
    read_setting,
)
from cs_kpis.sources.records import RawRecord

SOURCE = "Salesforce"
SYSTEM = "crm"

SOQL_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": (
        "Id", "Name", "ParentId", "OwnerId", "CSM__c", "Segment__c", "Industry", "BillingCountry", "Type",
        "CSM_Sentiment__c", "Product_Workspace_Id__c", "NumberOfEmployees", "CreatedDate", "LastModifiedDate",
        "SystemModstamp", "IsDeleted",
    ),
    # user has no IsDeleted in salesforce: users are deactivated (IsActive), never deleted
    "User": ("Id", "Name", "Email", "Title", "UserRoleName__c", "IsActive", "CreatedDate", "SystemModstamp"),
    # IsDeleted is selected because queryAll returns deleted rows and they must be told apart
    "Contact": (
        "Id", "AccountId", "FirstName", "LastName", "Email", "Title", "Role__c", "Product_User_Id__c",
        "CreatedDate", "SystemModstamp", "IsDeleted",
    ),
    "Opportunity": (
        "Id", "AccountId", "Name", "Type", "StageName", "IsClosed", "IsWon", "CloseDate", "Amount",
        "CurrencyIsoCode", "OwnerId", "CreatedDate", "SystemModstamp", "IsDeleted",
    ),
    # field history of the tracked Account fields; queryAll, as for the others (IsDeleted rows are told apart)
    "AccountHistory": (
        "Id", "AccountId", "Field", "DataType", "OldValue", "NewValue", "CreatedDate", "CreatedById", "IsDeleted",
    ),
}  # fmt: skip
"""the fields selected per object: the ones docs/LANDING.md lists, plus IsDeleted where the object has
it and the standard Account.NumberOfEmployees (which the simulator writes)"""


@dataclass(frozen=True, kw_only=True)
class SalesforceApiConfig(VendorApiConfig):
    """How to reach Salesforce. The token never shows in ``repr``, logs or exception messages."""

    SYSTEM: ClassVar[str] = SYSTEM
    ENV_PREFIX: ClassVar[str] = "SALESFORCE"

    instance_url: str
    """e.g. ``https://mycompany.my.salesforce.com``"""
    access_token: str = field(repr=False)
    api_version: str = "v62.0"
    timeout: float = 120.0
    fields: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(SOQL_FIELDS), compare=False, repr=False
    )
    """object -> fields to select; override to add custom fields"""

    @classmethod
    def settings_from_env(cls, overrides: Any) -> dict[str, Any]:
        """``SALESFORCE_INSTANCE_URL`` and ``SALESFORCE_ACCESS_TOKEN``, or dlt secrets."""
        return {
            "instance_url": read_setting("SALESFORCE_INSTANCE_URL", SYSTEM),
            "access_token": read_setting("SALESFORCE_ACCESS_TOKEN", SYSTEM),
        }


class SalesforceQueryPaginator(JSONLinkPaginator):
    """Follow the relative ``nextRecordsUrl`` until ``done`` (dlt resolves it against the page URL)."""

    def __init__(self) -> None:
        super().__init__(next_url_path="nextRecordsUrl")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Take ``nextRecordsUrl``, unless the response says ``done``."""
        super().update_state(response, data)
        if response.json().get("done", True):
            self._next_reference = None


CURSOR_FIELDS: dict[str, str] = {"AccountHistory": "CreatedDate"}
"""objects without SystemModstamp: history rows are written once, so their CreatedDate is the cursor"""


def soql(config: SalesforceApiConfig, entity: str, since: int | None) -> str:
    """The SOQL query for ``entity``: its fields, modified since ``since`` (Unix seconds), oldest first."""
    fields = ", ".join(config.fields[entity])
    # SystemModstamp, not LastModifiedDate: it also moves on system-side changes
    cursor = CURSOR_FIELDS.get(entity, "SystemModstamp")
    where = ""
    if since is not None:
        # soql datetime literals are unquoted ISO-8601 in UTC
        stamp = datetime.fromtimestamp(int(since), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        where = f" WHERE {cursor} >= {stamp}"
    return f"SELECT {fields} FROM {entity}{where} ORDER BY {cursor}"


def iter_records(config: SalesforceApiConfig, entity: str, since: int | None = None) -> Iterator[RawRecord]:
    """Yield every record of one Salesforce object, unchanged, as a :class:`RawRecord`.

    Args:
        config: where and how to connect.
        entity: ``Account``, ``User``, ``Contact`` or ``Opportunity`` (any key of ``config.fields``).
        since: Unix seconds; only records with ``SystemModstamp >= since``. None: all records.

    Raises:
        ValueError: unknown entity.
        VendorAuthError: the token was rejected (401/403), at once, without retries.
        VendorApiError: another error status, after the retries for 429/5xx ran out.
    """
    if entity not in config.fields:
        raise ValueError(f"unknown Salesforce object {entity!r}; expected one of {sorted(config.fields)}")
    client = make_client(
        base_url=config.instance_url,
        auth=BearerTokenAuth(token=config.access_token),
        headers={"Accept": "application/json"},
        **config.client_settings(),
    )
    secrets = [config.access_token]
    pages = iter_pages(
        client,
        f"/services/data/{config.api_version}/queryAll",
        params={"q": soql(config, entity, since)},
        paginator=SalesforceQueryPaginator(),
        data_selector="records",
        hook=error_hook(SOURCE, "SALESFORCE_ACCESS_TOKEN", secrets),
        secrets=secrets,
    )
    yield from iter_page_records(pages)
