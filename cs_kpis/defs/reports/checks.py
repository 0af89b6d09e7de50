"""Checks on reports.account_worklist (cs_kpis.lib.checks: a query for the rows that break a rule).

Blocking: the KPI report's worklist, top risks and expansion tables read it; an account twice would show
twice in each.
"""

from cs_kpis.defs.reports.assets import WORKLIST
from cs_kpis.lib.checks import unique_key_check
from cs_kpis.lib.sql import asset_key_for_table

worklist_unique = unique_key_check(asset_key_for_table(*WORKLIST.split(".")), WORKLIST, ["account_id"])
