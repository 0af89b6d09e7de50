"""marts/account_xref: which CRM account each billing, support, product and NPS record belongs to (README.md)."""
