"""Checks on staging: every model's grain is unique and never null (blocking: marts join on these keys), and
every proration of 0 is told as a credit or a charge (a warning: see ZERO_PRORATIONS_SQL)."""

import re

import dagster as dg

from cs_kpis.defs.staging.assets import STAGING_MODELS, key
from cs_kpis.lib import incremental_loads
from cs_kpis.lib.checks import not_null_check, sql_check, unique_key_check, unique_key_check_by_load
from cs_kpis.lib.sql import strip_comments


def _renames(sql: str, columns) -> bool:
    """Whether the model's SQL names any of ``columns`` as an alias (``id as event_id``): raw has no such column,
    and a lookup of it in raw would bind to the outer query's column instead."""
    body = strip_comments(sql)
    return any(re.search(rf"\bas\s+{re.escape(c)}\b", body, re.IGNORECASE) for c in columns)


def build_grain_checks(models) -> list[dg.AssetChecksDefinition]:
    """A blocking unique-key and not-null check on the grain of every model that declares one."""
    checks = []
    for model in models:
        if not model.grain:
            continue
        # appended by raw load: a nightly check looks up the new loads' keys only, in raw under the same names
        # (a merged model, or one that renames a key column, e.g. billing events' id -> event_id: the whole table)
        if model.by_load and not model.merge and not _renames(model.sql, model.grain):
            raw = incremental_loads.raw_table(model.sql, model.table)
            checks.append(unique_key_check_by_load(model.key, model.table, model.grain, raw, blocking=True))
        else:
            checks.append(unique_key_check(model.key, model.table, model.grain, blocking=True))
        checks.append(not_null_check(model.key, model.table, model.grain, blocking=True))
    return checks


ZERO_PRORATIONS_RECOGNISED = "zero_amount_prorations_are_recognised"

# A proration of 0 (a discount took all of it) names no credited line when Stripe gives none (a pending
# invoice item, in API 2025-03-31.basil; a line crediting a charge that was still pending): then only the
# English description tells a credit ("Unused time on ...") from a charge ("Remaining time on ...")
# (staging/sql/parts/proration_credit.sql). These rows start with neither: the rule took each for a charge.
# A billed invoice item is also an invoice line (which may name its credited line): only pending items count.
ZERO_PRORATIONS_SQL = """
select 'invoice line' as found_in, line_id as id, invoice_id, subscription_id, description
from staging.stg_billing__invoice_lines
where is_proration and amount_minor = 0 and not is_proration_credit
  and coalesce(description, '') not like 'Remaining time%'
union all
select 'pending invoice item' as found_in, invoice_item_id as id, invoice_id, subscription_id, description
from staging.stg_billing__invoice_items
where is_pending and is_proration and amount_minor = 0 and not is_proration_credit
  and coalesce(description, '') not like 'Remaining time%'
"""

staging_checks = [
    *build_grain_checks(STAGING_MODELS),
    sql_check(
        key("stg_billing__invoice_lines"), ZERO_PRORATIONS_RECOGNISED,
        "every proration of 0 (a discount took all of it) is told as a credit or a charge. Where Stripe names no "
        "credited line (a pending invoice item; a line crediting a charge that was pending), only its English "
        "description tells: \"Unused time on ...\" is a credit, \"Remaining time on ...\" a charge. The rows start "
        "with neither (a localized or reworded description) and were taken for charges: the revenue history "
        "then counts the credited (old) item on top of the new one from the change, its MRR too high (marts/"
        "README.md \"Revenue history\", rule 2). The rows name the line or pending item; check the Stripe account's "
        "language and the descriptions Stripe writes (docs/LANDING.md, invoice lines and invoice items)",
        ZERO_PRORATIONS_SQL, blocking=False, severity=dg.AssetCheckSeverity.WARN,
        additional_deps=[key("stg_billing__invoice_items")],
    ),
]
