"""Salesforce (CRM) constants: which objects load, their keys and typed fields."""

SYSTEM = "crm"

FOLDERS: dict[str, str] = {
    "accounts": "Account",
    "users": "User",
    "contacts": "Contact",
    "opportunities": "Opportunity",
    "account_history": "AccountHistory",
}
"""resource -> Salesforce object (the landing folder and the API entity)"""

OPTIONAL_RESOURCES: frozenset[str] = frozenset({"contacts", "opportunities", "account_history"})
"""may be absent or empty (an org without field history tracking on Account, without contacts or opportunities
yet): the raw table is created anyway, with the columns staging reads declared below"""

HISTORY_VALUE_FIELDS: tuple[str, ...] = ("OldValue", "NewValue")
"""AccountHistory values are ``anyType`` (text, number, boolean, by the field changed): loaded as text"""

CURSOR_FIELDS: dict[str, str] = {"account_history": "CreatedDate"}
"""API mode cursor where the object has no SystemModstamp (history rows are never modified)"""

PRIMARY_KEY = "Id"

DATETIME_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("CreatedDate", "LastModifiedDate", "SystemModstamp"),
    "users": ("CreatedDate", "SystemModstamp"),
    "contacts": ("CreatedDate", "SystemModstamp"),
    "opportunities": ("CreatedDate", "SystemModstamp"),
    "account_history": ("CreatedDate",),
}
"""Salesforce datetimes (``2025-12-16T13:05:30.000+0000``), loaded as timestamps"""

DATE_FIELDS: dict[str, tuple[str, ...]] = {"contacts": ("_extract_day",), "opportunities": ("CloseDate", "_extract_day"),
                                           "account_history": ("_extract_day",)}
"""dates (``CloseDate`` parsed from ``YYYY-MM-DD``), and the optional objects' ``_extract_day``, declared"""

DECLARED_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "text": ("Id", "Name", "ParentId", "OwnerId", "CSM__c", "Segment__c", "Industry", "BillingCountry", "Type",
                 "CSM_Sentiment__c", "Product_Workspace_Id__c"),
        "bigint": ("NumberOfEmployees",), "bool": ("IsDeleted",),
    },
    "users": {"text": ("Name", "Email", "Title", "UserRoleName__c"), "bool": ("IsActive",)},
    "contacts": {
        "text": ("Id", "AccountId", "FirstName", "LastName", "Email", "Title", "Role__c", "Product_User_Id__c"),
    },
    "opportunities": {
        "text": ("Id", "AccountId", "Name", "Type", "StageName", "CurrencyIsoCode", "OwnerId"),
        "bool": ("IsClosed", "IsWon"), "double": ("Amount",),
    },
    "account_history": {
        "text": ("Id", "AccountId", "Field", "DataType", "OldValue", "NewValue", "CreatedById"),
        "bool": ("IsDeleted",),
    },
}
"""every field staging reads besides the datetimes and dates above, declared with the type dlt infers for it:
dlt creates no column for a field that is null in every record, and a first export may have no account with a
parent (no hierarchies), a CSM sentiment or an employee count yet, no contact with a role or a product user id,
no user with a title. The optional objects' tables are created even when no record comes (AccountHistory in
an org without field history tracking; an org with no contact or no opportunity yet), so their ids are
declared too (and their ``_extract_day``, in DATE_FIELDS)"""

CURRENCY_FIELDS: dict[str, tuple[str, ...]] = {"opportunities": ("CurrencyIsoCode",)}

NON_NEGATIVE_FIELDS: dict[str, tuple[str, ...]] = {"opportunities": ("Amount",)}
"""Opportunity.Amount is in major units and stays as sent"""

CURSOR_FIELD = "SystemModstamp"
"""API mode: LastModifiedDate misses system-side changes"""

SCD2_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "scd2"}
"""accounts keep every version (owner, CSM, segment as of any day); validity is the extract day"""

# Contracts: the fields the pipeline uses, typed from Salesforce's object reference (a record whose value
# does not fit is quarantined)
from cs_kpis.sources.common.contract import Field

_ID = Field("text", required=True)
_REF = Field("text")
_DT = Field("sf_datetime")

CONTRACTS: dict[str, dict[str, Field]] = {
    "accounts": {
        "Id": _ID, "Name": Field("text"), "ParentId": _REF, "OwnerId": _REF, "CSM__c": _REF,
        "Segment__c": Field("text"), "Industry": Field("text"), "BillingCountry": Field("text"),
        "Type": Field("text"), "CSM_Sentiment__c": Field("text"), "Product_Workspace_Id__c": Field("text"),
        "CreatedDate": _DT, "LastModifiedDate": _DT, "SystemModstamp": _DT, "IsDeleted": Field("bool"),
    },
    "users": {
        "Id": _ID, "Name": Field("text"), "Email": Field("text"), "Title": Field("text"),
        "UserRoleName__c": Field("text"), "IsActive": Field("bool"), "CreatedDate": _DT, "SystemModstamp": _DT,
    },
    "contacts": {
        "Id": _ID, "AccountId": _REF, "FirstName": Field("text"), "LastName": Field("text"), "Email": Field("text"),
        "Title": Field("text"), "Role__c": Field("text"), "Product_User_Id__c": Field("text"),
        "CreatedDate": _DT, "SystemModstamp": _DT,
    },
    "opportunities": {
        "Id": _ID, "AccountId": _REF, "Name": Field("text"), "Type": Field("text"), "StageName": Field("text"),
        "IsClosed": Field("bool"), "IsWon": Field("bool"), "CloseDate": Field("date"),
        "Amount": Field("number", min=0), "CurrencyIsoCode": Field("currency"), "OwnerId": _REF,
        "CreatedDate": _DT, "SystemModstamp": _DT,
    },
    # field history (queryAll AccountHistory): OldValue/NewValue are anyType, so not declared here
    "account_history": {
        "Id": _ID, "AccountId": Field("text", required=True), "Field": Field("text", required=True),
        "DataType": Field("text"), "CreatedDate": Field("sf_datetime", required=True), "CreatedById": _REF,
        "IsDeleted": Field("bool"),
    },
}
