"""marts/account_xref and marts/unmatched_source_records, built from ``sql/*.sql``.

Kept out of defs/marts/ so the cross-reference can change without touching the revenue marts; the tables
still live in the ``marts`` schema and the ``marts`` group.
"""

from pathlib import Path

import dagster as dg

from cs_kpis.lib.checks import SAMPLE_ROWS, run_rule
from cs_kpis.lib.sql import SqlModel, load_models, model_key, sql_assets

SCHEMA = "marts"
GROUP = "marts"
SQL_DIR = Path(__file__).parent / "sql"

XREF_MODELS = load_models(SQL_DIR, SCHEMA)


def key(name: str) -> dg.AssetKey:
    """The key of the cross-reference table ``marts.<name>``, for the modules that
    name it: import it, don't retype it (cs_kpis.lib.sql.model_key)."""
    return model_key(SQL_DIR, SCHEMA, name)


UNMATCHED_KEY = key("unmatched_source_records")

_SUMMARY = {
    "account_xref": """
        select source_system, count(*) as records, sum(case when matched then 1 else 0 end) as matched,
               cast(sum(case when matched then 1 else 0 end) as double) / count(*) as match_rate
        from marts.account_xref group by source_system order by source_system""",
    "unmatched_source_records": f"""
        select source_system, source_id, source_name, unmatched_reason, volume_measure, volume,
               round(share_of_total, 4) as share_of_total
        from marts.unmatched_source_records
        order by share_of_total desc, source_system, source_id limit {SAMPLE_ROWS}""",
}


def _summary(con, model: SqlModel) -> dict:
    """Match rates per system (xref) or the heaviest unmatched records, as a markdown table."""
    sql = _SUMMARY.get(model.name)
    if sql is None:
        return {}
    _, sample = run_rule(con, sql)
    return {"summary": dg.MetadataValue.md(sample or "(none)")}


xref_assets = sql_assets(XREF_MODELS, group=GROUP, extra_metadata=_summary)
