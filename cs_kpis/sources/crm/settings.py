"""Salesforce (CRM) constants: which objects load, their keys and typed fields."""

SYSTEM = "crm"

FOLDERS: dict[str, str] = {
    "accounts": "Account",
    "users": "User",
    "contacts": "Contact",
    "opportunities": "Opportunity",
}
"""resource -> Salesforce object (the landing folder and the API entity)"""

PRIMARY_KEY = "Id"

DATETIME_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("CreatedDate", "LastModifiedDate", "SystemModstamp"),
    "users": ("CreatedDate", "SystemModstamp"),
    "contacts": ("CreatedDate", "SystemModstamp"),
    "opportunities": ("CreatedDate", "SystemModstamp"),
}
"""Salesforce datetimes (``2025-12-16T13:05:30.000+0000``), loaded as timestamps"""

DATE_FIELDS: dict[str, tuple[str, ...]] = {"opportunities": ("CloseDate",)}

TEXT_FIELDS: dict[str, tuple[str, ...]] = {"accounts": ("ParentId",)}
"""declared text columns: ParentId is null on every account of a company without hierarchies, and dlt
creates no column for an all-null field unless it is declared (staging reads it)"""

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
}
