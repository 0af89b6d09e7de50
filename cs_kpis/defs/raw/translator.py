"""Asset specs for the raw dlt resources: keys ``raw/<system>/<entity>``, group raw, owners, freshness."""

from dataclasses import dataclass, field

import dagster as dg
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCaseNaming

from cs_kpis.defs.landing.keys import landing_asset_key
from cs_kpis.lib.sql import NIGHTLY_FRESHNESS, raw_key

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "crm": {
        "accounts": "Salesforce Accounts as scd2 history: one row per version, valid from its extract day "
        "(_dlt_valid_from/_dlt_valid_to), so owner, CSM and segment can be read as of any day.",
        "users": "Salesforce Users (AEs and CSMs), latest version per Id.",
        "contacts": "Salesforce Contacts with their Segment user id, latest version per Id.",
        "opportunities": "Salesforce Opportunities (Amount in major units, CurrencyIsoCode), latest version per Id.",
        "account_history": "Salesforce field history (AccountHistory, queryAll): one row per change of a tracked "
        "Account field (owner, CSM, segment, CSM sentiment), Old/NewValue as text; Salesforce keeps 18 months. "
        "Optional: the table exists even when no history came.",
    },
    "billing": {
        "customers": "Stripe customers with metadata__salesforce_account_id, latest version per id.",
        "products": "Stripe products, latest version per id.",
        "prices": "Stripe prices (unit_amount in minor units, recurring interval), latest version per id.",
        "coupons": "Stripe coupons (percent_off or amount_off), latest version per id.",
        "subscriptions": "Stripe subscriptions (all statuses), latest version per id; items in subscription_items.",
        "subscription_items": "Items of each subscription's latest version, with the expanded price; a new "
        "version of a subscription replaces its items.",
        "invoices": "Stripe invoices (amounts in minor units), latest version per id; lines in invoice_lines.",
        "invoice_lines": "Lines of each invoice's latest version (amount in minor units, proration flag).",
        "events": "Stripe events (subscription changes with previous_attributes, invoice payments), "
        "append-only, deduplicated on id.",
        "invoice_items": "Stripe invoice items (proration credits and charges, amount in minor units), latest "
        "version per id; invoice is null while pending (not yet on an invoice).",
        "fx_rates": "Daily fx rates from reference/fx_rates.csv: 1 unit of currency = rate units of USD.",
    },
    "product": {
        "events": "Segment track/identify/group events, deduplicated on messageId, context.groupId "
        "flattened, properties and traits as JSON; loaded set-based by DuckDB.",
    },
    "support": {
        "organizations": "Zendesk organizations with external_id (the Salesforce Account Id), latest per id.",
        "tickets": "Zendesk tickets (status, priority, satisfaction_rating__score), latest version per id.",
        "ticket_metrics": "Zendesk ticket metrics (solved_at, reply and resolution times), latest per id.",
        "satisfaction_ratings": "Zendesk CSAT ratings (good/bad/offered), latest version per id.",
    },
    "nps": {
        "survey_responses": "Delighted NPS responses (score 0-10, person_properties__salesforce_account_id), "
        "latest version per id.",
    },
}


def table_name(data: DltResourceTranslatorData) -> str:
    """The warehouse table of the resource (in schema raw), as dlt names it."""
    name = data.resource.table_name
    name = str(data.resource.name if callable(name) else name)
    # the pipeline has no schema before its first run; the project uses dlt's default naming (snake_case)
    return SnakeCaseNaming().normalize_tables_path(name)


def spec_metadata(metadata: dict) -> dict:
    """dagster-dlt's definition metadata without its own table name (replaced by the real one)."""
    return {k: v for k, v in metadata.items() if k != "dagster/table_name"}


@dataclass
class RawDltTranslator(DagsterDltTranslator):
    """Names every dlt resource of ``system`` as ``raw/<system>/<resource>`` in group ``raw``."""

    system: str = ""
    files_mode: bool = True
    freshness_policy: dg.FreshnessPolicy | None = field(default=NIGHTLY_FRESHNESS)  # the landing folder is written once a day

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        entity = data.resource.name
        base = super().get_asset_spec(data)
        return base.replace_attributes(
            key=raw_key(self.system, entity),
            deps=[landing_asset_key()] if self.files_mode else [],
            group_name="raw",
            kinds={"dlt", "duckdb"},
            owners=["team:data-eng"],
            description=DESCRIPTIONS.get(self.system, {}).get(entity, f"{self.system} {entity}, loaded by dlt."),
            freshness_policy=self.freshness_policy,
            # dagster-dlt names the table with normalize_table_identifier (billing_subscriptions: no such
            # table, dagster-io/dagster#33573); dlt creates it with normalize_tables_path (billing__subscriptions)
            metadata={**spec_metadata(base.metadata),
                      "dagster/table_name": f"raw.{table_name(data)}"},
        )
