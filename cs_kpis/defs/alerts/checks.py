"""Checks on the alert tables (cs_kpis.lib.checks: a query for the rows that break a rule).

Non-blocking: nothing downstream of the alerts is computed from them, and a broken alert table should page
the data team (on-call sensor), not hide the alerts.
"""

import dagster as dg

from cs_kpis.defs.alerts.assets import CANDIDATES, LOG
from cs_kpis.lib.checks import not_null_check, sql_check, unique_key_check

WARN = {"blocking": False, "severity": dg.AssetCheckSeverity.WARN}

candidates_unique = unique_key_check(CANDIDATES, "alerts.alert_candidates", ["dedup_key"], **WARN)
candidates_not_null = not_null_check(
    CANDIDATES, "alerts.alert_candidates",
    ["account_id", "alert_type", "severity", "status", "reason", "first_seen", "last_seen"], **WARN)
held_have_a_reason = sql_check(
    CANDIDATES, "alert_candidates_held_have_a_reason",
    "every held alert says why (hold_reason), and only held alerts have one",
    "select * from alerts.alert_candidates where (status = 'held') <> (hold_reason is not null)", **WARN)
candidates_have_an_owner = sql_check(
    CANDIDATES, "alert_candidates_have_an_owner", "every alert has an owner (the account's CSM)",
    "select dedup_key, account_id from alerts.alert_candidates where owner_id is null", **WARN)
log_unique = unique_key_check(LOG, "alerts.alert_log", ["event_id"], **WARN)
log_seq_unique = unique_key_check(LOG, "alerts.alert_log", ["log_seq"], **WARN)
