"""The health score in SQL: the one scorer of the history, the nightly run, kpis.health_scores and the backtest.

The SQL is generated from the validated config (health_score.py): score_sql scores indicator rows, explain_sql
explains the moves of at least CHANGE_MIN_DELTA points, parent_rollup_sql weights a hierarchy by ARR. Every value
goes through fixed IEEE double operations in a fixed order (x - floor, / (target - floor), clip, x 100, the
weighted sums left to right, one division); constants are exact DOUBLE literals (a bare 0.1 would be a
DECIMAL in DuckDB); rounding is half to even (sql_rint writes it out with floor, exact on doubles, since
DuckDB's round() rounds ties away from zero). cs_kpis_tests/health/score_oracle.py is a pandas reference
written independently, and test_score_sql.py asserts both give the very same rows.

score_history writes kpis.health_scores_daily and kpis.health_score_changes for the days the planner gives,
in ranges of accounts, planned like every incremental table (cs_kpis/lib/incremental.py).
"""

import contextlib
import dataclasses
import datetime as dt
import hashlib
import time

from cs_kpis.defs.health.health_score import COMPONENTS, ROUND_DIGITS, HealthConfig
from cs_kpis.lib import incremental
from cs_kpis.lib.incremental import sql_date

CHANGE_WINDOWS = (7, 30)
CHANGE_MIN_DELTA = 10.0
"""health_score_changes keeps account-days whose score moved at least this much over a window"""


def sql_double(x: float) -> str:
    """An exact DOUBLE literal (repr round-trips; DuckDB parses it correctly rounded)."""
    return f"'{float(x)!r}'::DOUBLE"


def sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sql_rint(x: str) -> str:
    """numpy's rint (round half to even) of a DOUBLE column ``x`` (named more than once: pass a column).

    For a = |x|: floor(a) and a - floor(a) are exact in double arithmetic, so the tie test is exact; a tie
    goes to the even neighbour; rint is odd-symmetric, so rint(x) = sign(x) x rint(|x|)."""
    a = f"abs({x})"
    fl = f"floor({a})"
    return (f"(sign({x}) * (case when {a} - {fl} > 0.5::DOUBLE then {fl} + 1 when {a} - {fl} < 0.5::DOUBLE "
            f"then {fl} else {fl} + ({fl} - 2 * floor({fl} / 2)) end))")


def sql_round(x: str, digits: int = ROUND_DIGITS) -> str:
    """np.round(x, digits) of a DOUBLE column: rint(x x 10^digits) / 10^digits, as numpy computes it."""
    f = sql_double(10.0 ** digits)
    return f"({sql_rint(f'({x} * {f})')} / {f})"


def _value_sql(name: str, config: HealthConfig) -> str:
    """indicator_values in SQL: csm_sentiment through the map (unmapped values are missing), others as
    DOUBLE (NaN is missing, as in numpy)."""
    if name == "csm_sentiment":
        whens = " ".join(f"when {sql_text(k)} then {sql_double(v)}" for k, v in config.sentiment_map.items())
        return f"(case cast(csm_sentiment as varchar) {whens} end)"
    return f"nullif(try_cast({name} as double), 'NaN'::DOUBLE)"


def _weighted_mean_sql(terms: list[tuple[str, float]]) -> tuple[str, str]:
    """(numerator, denominator) of the weighted mean of the non-null columns, added left to right as
    component_scores and score_frame add them (a missing term adds 0.0, which changes nothing)."""
    num = " + ".join(f"coalesce({x} * {sql_double(w)}, 0.0::DOUBLE)" for x, w in terms)
    den = " + ".join(f"(case when {x} is null then 0.0::DOUBLE else {sql_double(w)} end)" for x, w in terms)
    return num, den


def score_core_sql(config: HealthConfig, source: str) -> str:
    """The numeric core of score_sql: account_id, day, is_active, arr (DOUBLE), score (rounded) and, for
    each configured component c, its unrounded score _c_<c> and contribution _k_<c>. ``source`` is a table
    or a parenthesised subquery with account_id, day, is_active, arr and the config's indicator columns."""
    inds = [(c, i, f"_i{n}") for n, (c, i) in enumerate((c, i) for c in config.components for i in c.indicators)]
    fracs = []
    for _, ind, col in inds:
        frac = f"({_value_sql(ind.name, config)} - {sql_double(ind.floor)}) / {sql_double(ind.target - ind.floor)}"
        if ind.better == "lower":
            frac = f"1.0::DOUBLE - ({frac})"
        fracs.append(f"{frac} as {col}")
    # np.clip(frac, 0, 1) x 100; a null (missing) stays null
    scaled = [f"(case when {col} < 0 then 0.0::DOUBLE when {col} > 1 then 1.0::DOUBLE else {col} end) * 100.0::DOUBLE "
              f"as {col}" for _, _, col in inds]
    comps = []
    for comp in config.components:
        num, den = _weighted_mean_sql([(col, ind.weight) for c, ind, col in inds if c is comp])
        comps.append(f"case when ({den}) > 0 then ({num}) / ({den}) end as _c_{comp.name}")
    num, den = _weighted_mean_sql([(f"_c_{c.name}", c.weight) for c in config.components])
    raw = ["case when _den > 0 then _num / _den end as _raw"]
    raw += [f"(_c_{c.name} * {sql_double(c.weight)}) / _den as _k_{c.name}" for c in config.components]
    keep = "cast(account_id as varchar) as account_id, cast(day as date) as day, cast(is_active as boolean) as is_active, " \
           "cast(arr as double) as arr"
    cols = "account_id, day, is_active, arr"
    own = ", ".join(f"_c_{c.name}, _k_{c.name}" for c in config.components)
    return f"""
with _hs_frac as (select {keep}, {', '.join(fracs)} from {source}),
_hs_scaled as (select {cols}, {', '.join(scaled)} from _hs_frac),
_hs_comp as (select {cols}, {', '.join(comps)} from _hs_scaled),
_hs_sum as (select *, {num} as _num, {den} as _den from _hs_comp),
_hs_raw as (select *, {', '.join(raw)} from _hs_sum)
select {cols}, {sql_round('_raw')} as score, {own} from _hs_raw"""


def band_sql(config: HealthConfig, score: str) -> str:
    """The band of a score column: green from bands.green, yellow from bands.yellow, else red; null stays null."""
    return (f"case when {score} >= {sql_double(config.green)} then 'green' when {score} >= {sql_double(config.yellow)} "
            f"then 'yellow' when {score} is not null then 'red' end")


def score_finish_sql(config: HealthConfig, core: str, extra: tuple[str, ...] = ()) -> str:
    """The columns of score_sql from the rows of ``core`` (score_core_sql's columns, as a table or a
    parenthesised subquery), followed by its ``extra`` columns: band, the rounded component scores and
    contributions (null for components not configured), the label of the components present and the
    config version."""
    configured = [c.name for c in config.components]
    outs = []
    for c in COMPONENTS:
        if c in configured:
            outs += [f"{sql_round(f'_c_{c}')} as {c}_score", f"{sql_round(f'_k_{c}')} as contrib_{c}"]
        else:
            outs += [f"null::DOUBLE as {c}_score", f"null::DOUBLE as contrib_{c}"]
    # the label by bit mask (a list lookup: cheaper than building the string)
    mask = " + ".join(f"(case when _c_{c} is null then 0 else {1 << b} end)" for b, c in enumerate(COMPONENTS)
                      if c in configured)
    labels = [",".join(n for b, n in enumerate(COMPONENTS) if m >> b & 1) for m in range(1 << len(COMPONENTS))]
    counts = [m.bit_count() for m in range(1 << len(COMPONENTS))]
    extras = "".join(f", {e}" for e in extra)
    return f"""
select
    day, account_id, is_active, arr, score,
    {band_sql(config, 'score')} as band,
    {', '.join(outs)},
    [{', '.join(sql_text(x) for x in labels)}][_mask + 1] as components_present,
    cast([{', '.join(map(str, counts))}][_mask + 1] as integer) as components_present_count,
    {sql_text(config.version)} as config_version{extras}
from (select *, {mask} as _mask from {core})"""


def score_sql(config: HealthConfig, source: str) -> str:
    """A SELECT scoring every row of ``source`` (a table or a parenthesised subquery with account_id, day,
    is_active, arr and the config's indicator columns) plus is_active and arr:
    day, account_id, is_active, arr, score, band, <c>_score and contrib_<c> for the five components,
    components_present, components_present_count, config_version (the columns of health_scores_daily
    without the deltas)."""
    return score_finish_sql(config, f"({score_core_sql(config, source)})")


def explain_sql(config: HealthConfig, pairs: str, window_days: int | None, min_component_move: float = 1.0) -> str:
    """The rows of health_score_changes for ``pairs`` (a table or parenthesised subquery: day, account_id,
    band, config_version, score, <c>_score, score_before and <c>_score_before for the five components);
    ``window_days`` None: each pair's own, from a window_days column.

    Attribution: with p_c the rescaled weight of component c (0 when missing) and S0 the earlier score,
    ``<c>_delta = p_c,after x (C_c,after - S0) - p_c,before x (C_c,before - S0)``: they add up to the change.
    Reason: the components that moved the score by at least ``min_component_move`` points, largest first
    (ties in COMPONENTS order), e.g. ``health 78 → 52 (−26 in 30 d): usage −15 (82 → 40), support −8 (90 → 50)``;
    a component whose own score did not move reads ``(100 → 100, reweighted)``."""
    weights = {c.name: c.weight for c in config.components}

    def whole(col: str, r: str) -> str:
        return f"case when {col} is null then 'n/a' else cast(cast({r} as bigint) as varchar) end"

    def signed(r: str) -> str:
        return f"case when {r} < 0 then '−' else '+' end, cast(abs(cast({r} as bigint)) as varchar)"

    pres = []
    for suffix in ("", "_before"):
        for c in COMPONENTS:
            w = sql_double(weights.get(c, 0.0))
            pres.append(f"case when {c}_score{suffix} is null then 0.0::DOUBLE else {w} end as _p_{c}{suffix}")
    totals = [f"{' + '.join(f'_p_{c}{suffix}' for c in COMPONENTS)} as _tot{suffix}" for suffix in ("", "_before")]
    shares = [f"case when _tot{suffix} > 0 then _p_{c}{suffix} / _tot{suffix} else 0.0::DOUBLE end as _sh_{c}{suffix}"
              for suffix in ("", "_before") for c in COMPONENTS]
    moves = [f"(_sh_{c} * (coalesce({c}_score, 0.0::DOUBLE) - score_before)) - "
             f"(_sh_{c}_before * (coalesce({c}_score_before, 0.0::DOUBLE) - score_before)) as {c}_delta"
             for c in COMPONENTS]
    rints = [f"{sql_rint(col)} as _r_{col}" for col in
             ["score_before", "score", "delta", *[f"{c}_delta" for c in COMPONENTS],
              *[f"{c}_score" for c in COMPONENTS], *[f"{c}_score_before" for c in COMPONENTS]]]
    keep = [f"abs({c}_delta) >= {sql_double(min_component_move)} as _keep_{c}" for c in COMPONENTS]
    texts, ranks = [], []
    for n, c in enumerate(COMPONENTS):
        same = f"coalesce(_r_{c}_score_before = _r_{c}_score, false)"
        texts.append(f"case when _keep_{c} then concat('{c} ', {signed(f'_r_{c}_delta')}, ' (', "
                     f"{whole(f'{c}_score_before', f'_r_{c}_score_before')}, ' → ', "
                     f"{whole(f'{c}_score', f'_r_{c}_score')}, "
                     f"case when {same} then ', reweighted)' else ')' end) end as _text_{c}")
        # the place of c among the movers, largest move first, ties in COMPONENTS order (a stable sort)
        ahead = [f"cast(_keep_{d} and (abs({d}_delta) > abs({c}_delta)"
                 + (f" or abs({d}_delta) = abs({c}_delta))" if m < n else ")") + " as integer)"
                 for m, d in enumerate(COMPONENTS) if d != c]
        ranks.append(f"{' + '.join(ahead)} as _rank_{c}")
    places = [f"case {' '.join(f'when _keep_{c} and _rank_{c} = {k} then _text_{c}' for c in COMPONENTS)} end"
              for k in range(len(COMPONENTS))]
    any_mover = " or ".join(f"_keep_{c}" for c in COMPONENTS)
    window = "window_days" if window_days is None else str(int(window_days))
    head = (f"'health ', {whole('score_before', '_r_score_before')}, ' → ', {whole('score', '_r_score')}, ' (', "
            f"{signed('_r_delta')}, ' in ', cast({window} as integer), ' d)'")
    return f"""
with _hx_p as (
    select day, account_id, {window} as window_days, band, config_version, score, score_before,
        score - score_before as delta,
        {', '.join(f'{c}_score, {c}_score_before' for c in COMPONENTS)}, {', '.join(pres)}
    from {pairs}
),
_hx_t as (select *, {', '.join(totals)} from _hx_p),
_hx_s as (select *, {', '.join(shares)} from _hx_t),
_hx_m as (select *, {', '.join(moves)} from _hx_s),
_hx_r as (select *, {', '.join(rints)}, {', '.join(keep)} from _hx_m),
_hx_x as (select *, {', '.join(texts)}, {', '.join(ranks)} from _hx_r)
select
    cast(day as date) as day,
    cast(account_id as varchar) as account_id,
    cast(window_days as integer) as window_days,
    score_before, score, delta, cast(band as varchar) as band,
    {', '.join(f'{c}_delta' for c in COMPONENTS)},
    concat({head}, case when {any_mover} then ': ' end, concat_ws(', ', {', '.join(places)})) as reason,
    cast(config_version as varchar) as config_version
from _hx_x"""


SCORES_TABLE = "kpis.health_scores_daily"
CHANGES_TABLE = "kpis.health_score_changes"
INDICATORS_TABLE = "kpis.account_indicators_daily"


def spec(config: HealthConfig) -> incremental.Incremental:
    """How the scores are built incrementally: the history the indicators keep, rescored from the earliest
    day any indicator build since the last scoring rebuilt (or the lookback), fully after a full indicator
    build or when the config or the scoring SQL changed (its version is a hash of the generated SQL)."""
    sql = (scores_sql(config, None, None) + scores_sql(config, None, None, before=True) + moved_sql(None, None)
           + changes_sql(config, None) + changes_from_scored_sql(config))
    version = hashlib.sha256(sql.encode()).hexdigest()[:12]
    # ranges sized from DuckDB's memory limit, as the indicators' (1 M account-days per GB: on demo the scoring
    # statement held about 0.6 KB per row, so a fixed 12 M-row range would not fit an 8 GB limit unspilled)
    return incremental.Incremental(SCORES_TABLE, version, limited_history=True, upstream=(INDICATORS_TABLE,),
                                   rows_per_gb=1_000_000)


def plan_scoring(con, config: HealthConfig, full_refresh: bool = False) -> incremental.BuildWindow:
    """The days the next scoring (re)computes (cs_kpis/lib/incremental.py's planner)."""
    full_refresh = full_refresh or not incremental.table_exists(con, CHANGES_TABLE)
    return incremental.plan(con, spec(config), full_refresh=full_refresh)


Accounts = tuple[str | None, str | None] | tuple[str | None, str | None, int, bool] | None
"""a range of account ids (first exclusive, last inclusive; None = open), or None for every account; two more
items, a build_seq and True, keep only the accounts that build rebuilds on every day (incremental.ACCOUNTS_TABLE),
with False every other account"""


def _range_filter(alias: str, accounts: Accounts, since: dt.date | None) -> str:
    """SQL filter on ``alias``: the account range (and list) and the days from ``since`` (a comparison of
    account ids on every row is not free: no range, no filter)."""
    where = ["true"]
    first, last, *listed = accounts or (None, None)
    if first is not None:
        where.append(f"{alias}.account_id > {sql_text(first)}")
    if last is not None:
        where.append(f"{alias}.account_id <= {sql_text(last)}")
    if listed:
        seq, only = listed
        # exists, not in: a null in the list would make `not in` drop every account
        where.append(f"{'' if only else 'not '}exists (select 1 from {incremental.ACCOUNTS_TABLE} as l "
                     f"where l.model = {sql_text(SCORES_TABLE)} and l.build_seq = {int(seq)} "
                     f"and l.account_id = {alias}.account_id)")
    if since is not None:
        where.append(f"{alias}.day >= {sql_date(since)}")
    return " and ".join(where)


SCORED = "_health_scored"
"""temp table: the scored rows of a pass of the accounts rebuilt on every day, with each change window's earlier
score and component scores (scores_sql's ``before``); both tables are written from it"""

SCORE_COLUMNS = ("day", "account_id", "is_active", "arr", "score", "band",
                 *[col for c in COMPONENTS for col in (f"{c}_score", f"contrib_{c}")],
                 "components_present", "components_present_count", "config_version",
                 *[f"delta_{w}d" for w in CHANGE_WINDOWS])
"""the columns of kpis.health_scores_daily, in order"""


def _before_columns(window: int) -> list[str]:
    """The columns of SCORED holding the score and component scores ``window`` days earlier."""
    return [f"score_before_{window}d", *[f"{c}_score_before_{window}d" for c in COMPONENTS]]


def scores_sql(config: HealthConfig, accounts: Accounts, start: dt.date | None, incremental: bool = False,
               as_of: dt.date | None = None, before: bool = False, until: dt.date | None = None) -> str:
    """The rows of kpis.health_scores_daily for the ``accounts`` from day ``start`` on (None:
    every day): score_sql over the indicator rows, with delta_<w>d for every change window from a self-join
    on (account_id, day - w) over the new rows and, when ``incremental``, the stored scores of the w days
    before ``start`` (null when that day was not scored). An incremental scoring (new rows from ``start`` to
    ``as_of``) joins each window with only the days it can reach, start - w .. as_of - w (the stored ones read
    once). With ``before``, also score_before_<w>d and <c>_score_before_<w>d (the component scores rounded as
    stored) for the explanations (changes_from_scored_sql). With ``until``, only the days before it (their
    deltas reach only earlier days, so they are the same rows)."""
    windows = CHANGE_WINDOWS
    if incremental and (start is None or as_of is None):
        raise ValueError("an incremental scoring needs its first day and its as-of day")
    configured = {c.name for c in config.components}
    where = _range_filter('i', accounts, start)
    if accounts is not None and len(accounts) == 4 and accounts[3]:
        # the listed accounts' rows, found by their row ids: DuckDB pushes the list into the scan only as a
        # zone-map filter (on the large company the 9 accounts' 3,012 rows left 128 of 302 row groups, 14.3 M
        # rows with every indicator column), while a scan of their ids alone is cheap, and the rows it finds are
        # fetched from their own row groups only (the indicators' nightly writes them with the window's rows: 7 of
        # the 276 row groups on the large company, 1 when they had a pass of their own; rows anywhere are still
        # found, at worst with the reads of before); the days are filtered on those rows
        where = (f"rowid in (select rowid from kpis.account_indicators_daily as i where "
                 f"{_range_filter('i', accounts, None)}) and {_range_filter('i', None, start)}")
    if until is not None:
        where += f" and i.day < {sql_date(until)}"
    source = f"(select * from kpis.account_indicators_daily as i where {where})"
    comps = ", " + ", ".join(f"{sql_round(f'_c_{c}') if c in configured else 'null::DOUBLE'} as {c}_score"
                             for c in COMPONENTS) if before else ""
    pool = f"select account_id, day, score{comps} from _hs_new"
    if incremental:
        reach = {w: (start - dt.timedelta(days=w), as_of - dt.timedelta(days=w)) for w in windows}
        stored_comps = "".join(f", {c}_score" for c in COMPONENTS) if before else ""
        # all 30 stored days before the window, although the pools use 16 of them (for an 8-day window): a filter
        # to just those (a range per window) was no cheaper on the large company (BENCHMARKS.md, session 22)
        stored = (f"select account_id, day, score{stored_comps} from kpis.health_scores_daily as s where "
                  f"{_range_filter('s', accounts, start - dt.timedelta(days=max(windows)))} and s.day < {sql_date(start)}")
        ctes = [f"_hs_stored as materialized ({stored})"]
        ctes += [f"_hs_pool{w} as ({pool} where day <= {sql_date(b)} union all select * from _hs_stored "
                 f"where day between {sql_date(a)} and {sql_date(b)})" for w, (a, b) in reach.items()]
    else:
        ctes = [f"_hs_pool as ({pool})"]
    pools = {w: f"_hs_pool{w}" if incremental else "_hs_pool" for w in windows}
    joins = "\n".join(f"left join {pools[w]} as p{w} on p{w}.account_id = n.account_id and p{w}.day = n.day - {int(w)}"
                      for w in windows)
    befores = [f"n.score - p{w}.score as delta_{w}d" + ("".join(
        f", p{w}.{b.removesuffix(f'_before_{w}d')} as {b}" for b in _before_columns(w)) if before else "")
        for w in windows]
    joined = f"(select n.*, {', '.join(befores)} from _hs_new as n\n{joins})"
    extra = tuple(col for w in windows for col in (f"delta_{w}d", *(_before_columns(w) if before else ())))
    # only the numeric core is materialized and joined; band, rounding and labels come after the joins
    return f"""
with _hs_new as materialized ({score_core_sql(config, source)}),
{", ".join(ctes)}
{score_finish_sql(config, joined, extra)}"""


MOVED = "_health_moved"
"""temp table: the account-days of one range whose score moved >= CHANGE_MIN_DELTA over a change window"""


def moved_sql(accounts: Accounts, start: dt.date | None) -> str:
    """The stored rows of the ``accounts`` from ``start`` on with |delta_<w>d| >= CHANGE_MIN_DELTA
    for some window: the 'after' side of health_score_changes (about a fifth of the rows)."""
    moved = " or ".join(f"abs(n.delta_{w}d) >= {sql_double(CHANGE_MIN_DELTA)}" for w in CHANGE_WINDOWS)
    cols = ", ".join(["day", "account_id", "band", "config_version", "score", *[f"{c}_score" for c in COMPONENTS],
                      *[f"delta_{w}d" for w in CHANGE_WINDOWS]])
    return (f"select {cols} from kpis.health_scores_daily as n "
            f"where {_range_filter('n', accounts, start)} and ({moved})")


def changes_sql(config: HealthConfig, start: dt.date | None, as_of: dt.date | None = None, moved: str = MOVED) -> str:
    """The rows of kpis.health_score_changes for the rows of ``moved`` (moved_sql): each, once per change
    window it moved in, joined with the stored score w days earlier and explained by explain_sql. The
    moved rows are a table so that the join builds its hash table on them (a fifth of the rows, exact
    cardinality) and probes the stored scores once for all windows: those of the days a window reaches from
    ``start`` (to ``as_of``, when given)."""
    after = " union all ".join(
        f"select *, {int(w)} as window_days from {moved} where abs(delta_{w}d) >= {sql_double(CHANGE_MIN_DELTA)}"
        for w in CHANGE_WINDOWS)
    cols = ", ".join(["n.day", "n.account_id", "n.window_days", "n.band", "n.config_version", "n.score",
                      *[f"n.{c}_score" for c in COMPONENTS], "p.score as score_before",
                      *[f"p.{c}_score as {c}_score_before" for c in COMPONENTS]])
    since = f" where p.day >= {sql_date(start - dt.timedelta(days=max(CHANGE_WINDOWS)))}" if start is not None else ""
    if start is not None and as_of is not None:
        since += f" and p.day <= {sql_date(as_of - dt.timedelta(days=min(CHANGE_WINDOWS)))}"
    pairs = (f"(select {cols} from ({after}) as n join kpis.health_scores_daily as p "
             f"on p.account_id = n.account_id and p.day = n.day - n.window_days{since})")
    return explain_sql(config, pairs, None)


def changes_from_scored_sql(config: HealthConfig, scored: str = SCORED) -> str:
    """The rows of kpis.health_score_changes for the rows of ``scored`` (scores_sql's with ``before``, as a
    table): each, once per change window it moved at least CHANGE_MIN_DELTA points in, with the score and
    component scores of that window's earlier day, explained by explain_sql: changes_sql's rows without
    reading the table again."""
    comps = ", ".join(f"{c}_score" for c in COMPONENTS)
    pairs = " union all ".join(
        f"select day, account_id, {int(w)} as window_days, band, config_version, score, {comps}, "
        + ", ".join(f"{b} as {b.removesuffix(f'_{w}d')}" for b in _before_columns(w))
        + f" from {scored} where abs(delta_{w}d) >= {sql_double(CHANGE_MIN_DELTA)}"
        for w in CHANGE_WINDOWS)
    return explain_sql(config, f"({pairs})", None)


def history_start_sql(history_start: dt.date) -> tuple[str, str]:
    """(an UPDATE of kpis.health_scores_daily, a DELETE from kpis.health_score_changes) that leave the kept
    history's first days as a full build of it leaves them: a full build scores no day before ``history_start``,
    so delta_<w>d is null on its first w days (the left join finds no earlier score) and they have no explained
    change over w days. A nightly that moves the history's start deletes the days before it; its rows of the
    next 30 days outside its window were scored while the older days still existed, and kept a delta and a
    change against a day no longer in the table (acc_a on the fixture's 2025-03-31: delta_30d -14.68 and "health
    44 -> 30 (-15 in 30 d)" against 03-01, deleted when the history's start moved to 03-02). Only the rows whose
    delta is not null yet are updated: each night, the days whose earlier day it deleted (about one per account
    and window), and once, a warehouse left so by the nightlies before this fix."""
    edge = {w: sql_date(history_start + dt.timedelta(days=w)) for w in CHANGE_WINDOWS}
    sets = ", ".join(f"delta_{w}d = case when day < {d} then null else delta_{w}d end" for w, d in edge.items())
    stale = " or ".join(f"(day < {d} and delta_{w}d is not null)" for w, d in edge.items())
    gone = " or ".join(f"(window_days = {int(w)} and day < {d})" for w, d in edge.items())
    return (f"update {SCORES_TABLE} set {sets} where {stale}", f"delete from {CHANGES_TABLE} where {gone}")


CLUSTER_DAYS = 31
"""a pass that writes more days than this (a full build's ranges, the accounts rebuilt on every day) writes its
scores ordered by month (newest first), then account and day (by_month)"""


def by_month(sql: str, rewritten_from: dt.date | None = None) -> str:
    """The rows of ``sql`` (a SELECT with day and account_id) ordered by calendar month, newest first, then account
    and day; with ``rewritten_from`` (the first day the next nightly deletes and writes again), those days after
    all the others, in the same order.

    The scores are written in ranges of accounts; unordered, each range's rows come in account order, so each
    of its row groups holds every day of a few accounts and a filter on day skips none (DuckDB keeps a min and
    max per column and row group). In months, a range's row groups each hold one month (of some of its
    accounts): the nightly's reads and writes by day (its window's days deleted, the 30 stored days before it
    read, the history's first days updated when its start moves) skip the other months' row groups. Within a
    month, account then day keeps each account's run of days together, which compresses nearly as well as the
    account order (whole days in account order took 2.4 times the space on the large company). The cost is a
    sort of each range: about +30 % of a full scoring's CPU on the large company, for a nightly 41-47 % cheaper
    (BENCHMARKS.md, session 21). The insert keeps the order as long as DuckDB's preserve_insertion_order is on
    (its default).

    Newest month first for the first nightly after a full build. Each range's insert ends with a partly filled
    row group, and at a checkpoint DuckDB's vacuum merges neighbouring row groups whose rows left after deletes
    fit in fewer, compressing them again. Oldest first, each range began with the history's first day, next to
    the previous range's partly filled row group; the first nightly deletes that day (the history's start moves
    one day on), and the vacuum merged the two: 0.61 s of checkpoint on the large company. Newest first, that day
    is each range's last rows, and its delete left nothing to merge (0.04 s; BENCHMARKS.md, session 35).

    A full build's ranges hold no day from ``rewritten_from`` on: score_history writes those days after every
    range, for all the accounts, as a nightly writes its window, so that the first nightly's delete of them takes
    the table's last rows, as every later nightly's does. At each range's end instead (sessions 24 to 34), that
    delete left row groups partly deleted at every range's end and the vacuum merged them (0.52-0.67 s of
    checkpoint, session 34). ``rewritten_from`` still orders a nightly's pass of the accounts it rebuilds on every
    day.
    """
    late = f"day >= {sql_date(rewritten_from)}, " if rewritten_from is not None else ""
    return f"select * from ({sql}) order by {late}date_trunc('month', day) desc, account_id, day"


@contextlib.contextmanager
def unordered_insert(con, unordered: bool = True):
    """With ``unordered``, DuckDB's preserve_insertion_order off for the statements inside (then as it was).

    The order of a nightly window's rows does not matter (by_month's docstring), and keeping it cost: on the large
    company's nightly, when the previous nightly's window was the table's end (every nightly but the first after
    a full build), the checkpoint that follows the commit (when the connection closes, or at the commit past
    checkpoint_threshold) compressed the 800,000 rows of an insert in order again (0.32-0.35 CPU s), and kept
    those of an unordered insert as written (0.01 s), as long as that insert was the transaction's first into
    the table: 3,012 rows inserted before it brought the cost back, so the window's pass goes first. After a full
    build's layout the checkpoint cost the same either way (BENCHMARKS.md, session 23). The setting
    is DuckDB's global one: another connection of the same process to the same database would see it for the
    statement's length (the scores' step holds the only one; steps run in processes of their own or one by one)."""
    if not unordered:
        yield
        return
    before = con.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("set preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute(f"set preserve_insertion_order = {'true' if before else 'false'}")


def _write(con, table: str, sql: str, create: bool) -> int:
    """Insert the rows of ``sql`` into ``table`` (by name), or replace the table with them; the row count."""
    if create:
        con.execute(f"create schema if not exists {table.split('.')[0]}")
        return con.execute(f"create or replace table {table} as {sql}").fetchall()[0][0]
    return con.execute(f"insert into {table} by name {sql}").fetchall()[0][0]


def score_history(con, config: HealthConfig, full_refresh: bool = False, chunk_rows: int | None = None) -> dict:
    """Score kpis.account_indicators_daily into kpis.health_scores_daily and kpis.health_score_changes.

    A full build scores every indicator row of the kept history; an incremental one deletes and rescores
    the days from the planned start, reading the stored scores of the 30 days before it for the deltas and
    explanations, and rescores every kept day of the accounts the planner lists (those the indicators rebuilt
    on every day since), as a full build scores them. Accounts are scored in ranges of about ``chunk_rows``
    account-days (incremental.py), one insert per range and table, so the joins' memory stays bounded at any
    history size. When the kept history is limited, the deltas and changes of its first 30 days that reached a
    day now deleted are nulled and deleted (history_start_sql), as a full build of that history leaves them.
    One transaction with the build's record: readers see the old or the new history, never half of it."""
    build = spec(config)
    window = plan_scoring(con, config, full_refresh)
    mode, start = window.mode, window.start_day
    ranges = incremental.account_ranges(con, window, incremental.range_rows(con, build, chunk_rows))
    listed = dataclasses.replace(window, start_day=window.history_start)  # the rebuilt accounts: every kept day
    listed_ranges = (incremental.account_ranges(con, listed, incremental.range_rows(con, build, chunk_rows),
                                                window.accounts) if window.accounts else [])
    rows, rebuilt, seconds = 0, 0, {"scores": 0.0, "changes": 0.0}
    con.execute("begin transaction")
    try:
        before = incremental.table_rows(con, SCORES_TABLE)
        seq = incremental.record(con, build, window)
        if mode == "incremental":
            for table in (SCORES_TABLE, CHANGES_TABLE):
                con.execute(f"delete from {table} where day >= ? or (cast(? as date) is not null and day < ?)",
                            [start, window.history_start, window.history_start])
                if window.accounts:
                    con.execute(f"delete from {table} as t where {_range_filter('t', (None, None, seq, True), None)}")
            if window.history_start is not None:
                # the days just deleted were the earlier day of the deltas and changes of the history's first
                # 30 days: those outside the window are made what a full build of the kept history gives
                for sql in history_start_sql(window.history_start):
                    con.execute(sql)
        create = mode == "full"
        # the days the next nightly rewrites (incremental.py: from its last built day minus lookback - 1 days; the
        # as-of day is that last day when the scores reach it, as a build's do)
        rewritten_from = incremental.next_fingerprint_day(build, window.as_of) if window.as_of is not None else None
        # A full build's ranges stop before the days the next nightly rewrites; then those days are scored for every
        # account as a nightly scores its window (from the 30 stored days before them, just written), after every
        # range, so that the first nightly's delete of them takes the table's last rows (by_month's docstring)
        tail = mode == "full" and rewritten_from is not None
        # a nightly: the window's days of every account but the listed ones first, then the listed accounts' every
        # day, as a full build scores them (neither pass deletes what the other wrote). Window first: its rows are
        # the transaction's first insert into the scores, which DuckDB then writes as they are (unordered_insert)
        passes = [((*(accounts or (None, None)), seq, False) if window.accounts else accounts, start,
                   mode == "incremental", rewritten_from if tail else None) for accounts in ranges]
        if tail:
            tail_window = dataclasses.replace(window, start_day=rewritten_from)
            passes += [(accounts, rewritten_from, True, None) for accounts in incremental.account_ranges(
                con, tail_window, incremental.range_rows(con, build, chunk_rows))]
        passes += [((first, last, seq, True), listed.start_day, False, None) for first, last in listed_ranges]
        for n, (accounts, since, windowed, until) in enumerate(passes):
            t0 = time.perf_counter()
            # many days (a full build, the rebuilt accounts' every day) are written month by month (by_month); a
            # nightly window's few days are appended together at the table's end anyway, in no particular order.
            # The explained changes too: written in account order, the next nightly's deletes (its window's days,
            # the history's first days) left a few rows deleted in every row group of health_score_changes, and the
            # checkpoint after the first nightly past a full build took 0.48 s for its window's 84,637 rows on the
            # large company (BENCHMARKS.md, session 33)
            unordered = since is not None and window.as_of is not None and (window.as_of - since).days < CLUSTER_DAYS
            order = (lambda sql: sql) if unordered else (lambda sql: by_month(sql, rewritten_from))
            if accounts is not None and len(accounts) == 4 and accounts[3]:
                # every kept day of the accounts rebuilt on every day: scored once with each window's earlier
                # scores, both tables written from that (their moved rows and earlier days, read back from the
                # table, were a scan of every stored row for a few accounts: about 0.9 s of the large nightly)
                con.execute(f"create or replace temp table {SCORED} as "
                            f"{scores_sql(config, accounts, since, windowed, window.as_of, before=True)}")
                written = _write(con, SCORES_TABLE, order(f"select {', '.join(SCORE_COLUMNS)} from {SCORED}"), create)
                t1 = time.perf_counter()
                _write(con, CHANGES_TABLE, order(changes_from_scored_sql(config)), create)
                con.execute(f"drop table {SCORED}")
            else:
                with unordered_insert(con, unordered):
                    written = _write(con, SCORES_TABLE,
                                     order(scores_sql(config, accounts, since, windowed, window.as_of, until=until)),
                                     create)
                t1 = time.perf_counter()
                con.execute(f"create or replace temp table {MOVED} as {moved_sql(accounts, since)}")
                _write(con, CHANGES_TABLE, order(changes_sql(config, since, window.as_of if windowed else None)), create)
                con.execute(f"drop table {MOVED}")
            rows += written
            rebuilt += written if n >= len(passes) - len(listed_ranges) else 0
            seconds["scores"] += t1 - t0
            seconds["changes"] += time.perf_counter() - t1
            create = False
        incremental.record_rows(con, SCORES_TABLE, before)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {"mode": mode, "start_day": start, "history_start": window.history_start, "reason": window.reason,
            "rows_scored": rows, "chunks": len(passes), "tail_chunks": len(passes) - len(ranges) - len(listed_ranges),
            "accounts_rebuilt": len(window.accounts),
            "rows_of_rebuilt_accounts": rebuilt, **{f"seconds_{k}": round(v, 2) for k, v in seconds.items()}}


# ------------------------------------------------------------------------------------- latest and roll-up

def parent_rollup_sql(config: HealthConfig, latest: str) -> str:
    """The rows of ``latest`` (a table or parenthesised subquery with root_account_id, score and arr) with
    their hierarchy's roll-up: parent_score, the ARR-weighted score of the root account and all its
    descendants with a score (plain mean when none has ARR > 0; a negative or missing ARR counts 0),
    parent_band, parent_arr and parent_accounts_scored. parent_score and parent_arr are rounded as the scores
    are (ROUND_DIGITS): a sum of doubles depends on the order DuckDB's threads add them in, and without the
    rounding two builds of the same rows differed in the last digits (73.61691938314218 and ...216 on the large
    company); the band is that of the rounded score, as for the scores."""
    parent_score = sql_round("case when parent_arr > 0 then _wsum / parent_arr else _mean end")
    return f"""
with _hp_latest as (select * from {latest}),
_hp_agg as (
    select root_account_id,
        sum(score * greatest(coalesce(arr, 0.0::DOUBLE), 0.0::DOUBLE)) as _wsum,
        sum(greatest(coalesce(arr, 0.0::DOUBLE), 0.0::DOUBLE)) as parent_arr,
        avg(score) as _mean, count(*) as parent_accounts_scored
    from _hp_latest where score is not null group by root_account_id
),
_hp_parent as (
    select root_account_id, {sql_round('parent_arr')} as parent_arr, parent_accounts_scored,
        {parent_score} as parent_score
    from _hp_agg
)
select l.*, p.parent_score, {band_sql(config, 'p.parent_score')} as parent_band, p.parent_arr,
    p.parent_accounts_scored
from _hp_latest as l left join _hp_parent as p on p.root_account_id = l.root_account_id"""


LATEST_SQL = """
    select s.*, i.root_account_id, cast(i.mrr as double) as mrr
    from kpis.health_scores_daily as s
    inner join kpis.account_indicators_daily as i
        on i.account_id = s.account_id and i.day = s.day
    where s.day = (select max(day) from kpis.health_scores_daily)
"""


def latest_sql(config: HealthConfig) -> str:
    """The rows of kpis.health_scores: each account's score on the latest day with its ARR and the roll-up
    of its hierarchy."""
    return parent_rollup_sql(config, f"({LATEST_SQL})")
