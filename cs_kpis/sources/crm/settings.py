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

CURRENCY_FIELDS: dict[str, tuple[str, ...]] = {"opportunities": ("CurrencyIsoCode",)}

NON_NEGATIVE_FIELDS: dict[str, tuple[str, ...]] = {"opportunities": ("Amount",)}
"""Opportunity.Amount is in major units and stays as sent"""

CURSOR_FIELD = "SystemModstamp"
"""API mode: LastModifiedDate misses system-side changes"""

SCD2_WRITE_DISPOSITION = {"disposition": "merge", "strategy": "scd2"}
"""accounts keep every version (owner, CSM, segment as of any day); validity is the extract day"""
