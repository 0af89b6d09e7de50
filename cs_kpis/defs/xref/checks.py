"""Checks on the account cross-reference: one row per source record, and little revenue left unmatched.

``unmatched_mrr_share_below_threshold`` is the project's only check on revenue without a CRM account: it sits
on marts.unmatched_source_records, the table that lists each unmatched Stripe customer with its MRR, so the
failing check and the list to work through are in the same place (issue 3). A second, invoice-based variant
on marts.mrr_monthly was removed: it measured the same thing with another approximation.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from cs_kpis.defs.xref.assets import UNMATCHED_KEY, XREF_MODELS
from cs_kpis.lib.checks import SAMPLE_ROWS, not_null_check, run_rule, unique_key_check
from cs_kpis.lib.sql import WAREHOUSE_POOL

UNMATCHED_MRR_SHARE_CHECK = "unmatched_mrr_share_below_threshold"
DEFAULT_MAX_UNMATCHED_MRR_SHARE = 0.05
"""share of current list MRR allowed on Stripe customers without a CRM account before the check fails"""


class UnmatchedMrrShareConfig(dg.Config):
    max_share: float = Field(
        default=DEFAULT_MAX_UNMATCHED_MRR_SHARE,
        description="fail when unmatched billing customers hold more than this share of list MRR (0-1)",
    )


@dg.asset_check(
    asset=UNMATCHED_KEY,
    name=UNMATCHED_MRR_SHARE_CHECK,
    # revenue without an account is missing from every account KPI; worth an alert, not a stopped pipeline
    blocking=False,
    pool=WAREHOUSE_POOL,
    description=(
        "Stripe customers that match no CRM account hold at most max_share (default 5%) of current list MRR "
        "(the approximation described on marts.unmatched_source_records)."
    ),
)
def unmatched_mrr_share_below_threshold(
    config: UnmatchedMrrShareConfig, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        unmatched_mrr, total_mrr, share = con.execute(
            "select coalesce(sum(volume), 0), coalesce(max(system_total_volume), 0), "
            "coalesce(sum(share_of_total), 0) "
            "from marts.unmatched_source_records where source_system = 'billing'"
        ).fetchall()[0]
        _, sample = run_rule(
            con,
            "select source_id as customer_id, source_name as customer_name, source_account_key, "
            "unmatched_reason, round(volume, 2) as mrr_usd, round(share_of_total, 4) as share_of_total "
            "from marts.unmatched_source_records where source_system = 'billing' and volume > 0 "
            f"order by volume desc, source_id limit {SAMPLE_ROWS}",
        )
    passed = share <= config.max_share
    metadata = {
        "unmatched_mrr_usd": dg.MetadataValue.float(float(unmatched_mrr)),
        "total_mrr_usd": dg.MetadataValue.float(float(total_mrr)),
        "unmatched_share": dg.MetadataValue.float(float(share)),
        "max_share": dg.MetadataValue.float(float(config.max_share)),
    }
    if sample:
        metadata["largest_unmatched"] = dg.MetadataValue.md(sample)
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=None
        if passed
        else f"unmatched customers hold {share:.1%} of list MRR (max {config.max_share:.1%})",
    )


def _grain_checks() -> list[dg.AssetChecksDefinition]:
    checks = []
    for model in XREF_MODELS:
        checks.append(unique_key_check(model.key, model.table, model.grain, blocking=True))
        checks.append(not_null_check(model.key, model.table, model.grain, blocking=True))
    return checks


xref_grain_checks = _grain_checks()
