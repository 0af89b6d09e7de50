"""Checks on the health score tables. Each is a query for the rows that break a rule (cs_kpis.lib.checks).

Blocking: scores and components within 0..100 and not null, one score per account per day (looked up among
the rows written since the check last passed: lib/checks.py written_rows_check), every account
with a subscription in force on the as-of day scored, contributions adding up to the score. Warning only:
the band distribution of active accounts on the as-of day moved sharply from the previous day (more than
the check_thresholds resource's health_band_shift_pp percentage points in any band: the company file's
settings.checks.health_band_shift_pp, CS_KPIS_HEALTH_BAND_SHIFT_PP overrides, default 10): worth a look (a
data problem or a real wave of risk), but not a reason to hold the scores back.
"""

import dagster as dg

from cs_kpis import tuning
from cs_kpis.defs.health import health_score as hs
from cs_kpis.defs.health.assets import SCORES, SCORES_DAILY
from cs_kpis.defs.marts import assets as marts
from cs_kpis.lib.checks import sql_check, unique_key_check, written_rows_check

SCORE_IN_RANGE = "health_scores_daily_score_in_range"
EVERY_ACTIVE_ACCOUNT_SCORED = "health_scores_daily_every_active_account_scored"
CONTRIBUTIONS_ADD_UP = "health_scores_daily_contributions_add_up"
UNIQUE_DAY = "health_scores_daily_unique_account_id_day"
BAND_SHIFT = "health_scores_daily_band_shift"
ENV_BAND_SHIFT = tuning.SETTINGS["checks.health_band_shift_pp"].env
DEFAULT_BAND_SHIFT_PP = tuning.SETTINGS["checks.health_band_shift_pp"].default

_COMPONENT_COLS = [f"{c}_score" for c in hs.COMPONENTS]

SCORE_RANGE_SQL = (
    "select day, account_id, score, " + ", ".join(_COMPONENT_COLS) + " from kpis.health_scores_daily "
    "where score is null or score < 0 or score > 100 or band is null or "
    + " or ".join(f"{c} < 0 or {c} > 100" for c in _COMPONENT_COLS)
)


def unique_day_sql(source: str) -> str:
    """The (account_id, day) keys of ``source`` (the scores, or the rows of them to check) found more than once."""
    return f"select account_id, day, count(*) as copies from {source} as s group by account_id, day having count(*) > 1"


EVERY_ACTIVE_ACCOUNT_SCORED_SQL = """
    with as_of as (
        select max(day) as day from marts.dim_day
    ),
    in_force as (
        select distinct p.account_id
        from marts.subscription_periods as p
        cross join as_of as a
        where p.account_id is not null
            and p.start_date <= a.day
            and (p.end_date is null or p.end_date > a.day)
    ),
    scored as (
        select s.account_id
        from kpis.health_scores_daily as s
        where s.day = (select day from as_of) and s.score is not null
    )
    select f.account_id, a.day as as_of_day
    from in_force as f
    cross join as_of as a
    left join scored as s
        on s.account_id = f.account_id
    where s.account_id is null
"""
"""the as-of day's scores filtered before the join (a scalar subquery): DuckDB skips the row groups of the other
days by their zone maps (the scores' full build is written month by month: 8 of 275 row groups on the large
company, 0.04 s instead of 0.5 s); the join on the day read every row of the table"""

CONTRIBUTIONS_SQL = (
    "select day, account_id, score, "
    + " + ".join(f"coalesce(contrib_{c}, 0)" for c in hs.COMPONENTS) + " as sum_of_contributions "
    "from kpis.health_scores_daily where abs(score - ("
    + " + ".join(f"coalesce(contrib_{c}, 0)" for c in hs.COMPONENTS) + ")) > 0.001"
)


def band_shift_sql(threshold_pp: float) -> str:
    """Bands whose share of active (MRR > 0) scored accounts moved more than ``threshold_pp`` points from the
    day before the latest day to the latest day."""
    return f"""
        with days as (
            select max(day) as latest from kpis.health_scores_daily
        ),
        shares as (
            select
                s.day,
                b.band,
                100.0 * cast(sum(case when s.band = b.band then 1 else 0 end) as double)
                    / cast(count(*) as double) as share_pp
            from kpis.health_scores_daily as s
            cross join days as d
            cross join (select 'green' as band union all select 'yellow' union all select 'red') as b
            where s.is_active and (s.day = d.latest or s.day = cast(d.latest - interval 1 day as date))
            group by s.day, b.band
        )
        select cur.band, prev.share_pp as previous_share_pp, cur.share_pp as latest_share_pp,
               cur.share_pp - prev.share_pp as shift_pp
        from shares as cur
        cross join days as d
        inner join shares as prev
            on prev.band = cur.band and prev.day = cast(d.latest - interval 1 day as date)
        where cur.day = d.latest and abs(cur.share_pp - prev.share_pp) > {threshold_pp}
    """


def build_health_checks() -> list[dg.AssetChecksDefinition]:
    return [
        sql_check(SCORES_DAILY, SCORE_IN_RANGE,
                  "every score and component score is within 0..100, and every row has a score and a band",
                  SCORE_RANGE_SQL),
        # the keys written since the check last passed (a nightly's days: grouping the 33 M keys of the large
        # company's year was 4.4 of the 6 CPU seconds of these checks in its nightly), every key after a full
        # build or a write by another path (cs_kpis/lib/incremental.py, rows_to_check)
        written_rows_check(SCORES_DAILY, UNIQUE_DAY, "kpis.health_scores_daily has exactly one row per (account_id, day)",
                           "kpis.health_scores_daily", unique_day_sql),
        unique_key_check(SCORES, "kpis.health_scores", ["account_id"]),
        sql_check(SCORES_DAILY, EVERY_ACTIVE_ACCOUNT_SCORED,
                  "every account with a subscription (trial or paid) in force on the as-of day has a score that day",
                  EVERY_ACTIVE_ACCOUNT_SCORED_SQL,
                  additional_deps=[marts.key("subscription_periods"), marts.DIM_DAY]),
        sql_check(SCORES_DAILY, CONTRIBUTIONS_ADD_UP,
                  "the component contributions add up to the score (the explanation accounts for every point)",
                  CONTRIBUTIONS_SQL),
        sql_check(SCORES_DAILY, BAND_SHIFT,
                  "no band's share of active scored accounts moved more than the check_thresholds resource's "
                  f"health_band_shift_pp (default {DEFAULT_BAND_SHIFT_PP:g}) percentage points from the previous day "
                  f"to the latest day (settings.checks.health_band_shift_pp; {ENV_BAND_SHIFT} overrides)",
                  lambda t: band_shift_sql(t.health_band_shift_pp), thresholds=("health_band_shift_pp",),
                  blocking=False, severity=dg.AssetCheckSeverity.WARN),
    ]


health_checks = build_health_checks()
