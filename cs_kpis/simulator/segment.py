"""Segment-shaped product events, generated a day at a time and written by DuckDB.

Volumes reach tens of millions of events, so nothing here loops per event in Python: numpy draws the
day's events as arrays and DuckDB formats them as JSON lines. Events land in the folder of the day
Segment *received* them: a few arrive up to three days late, and a few arrive twice. Where the lines go
and the identify/group lines themselves are written by cs_kpis/simulator/landing.py.
"""

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from . import catalog
from .landing import day_bounds, dumps, events_part, write_event_lines

EVENT_NAMES = catalog.GENERIC_EVENTS + catalog.KEY_FEATURES + tuple(
    m for m in catalog.ONBOARDING_MILESTONES if m not in catalog.KEY_FEATURES) + ("Account Created", "Signed Up")
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_N_GENERIC = len(catalog.GENERIC_EVENTS)

# each line is built by string concatenation in DuckDB and its text written as it comes (every value here
# is a plain identifier): about 4x faster than DuckDB's JSON writer with nested structs. One concat() of all
# the pieces, not a chain of ||, which copies the growing line at every step (a day of 45,000 events: 62 ms
# against 101). The event's own time is formatted once for its two fields (timestamp, originalTimestamp).
# concat() skips a null where || would give a null line: write_day refuses null inputs first
_TS = "strftime(epoch_ms({c}), '%Y-%m-%dT%H:%M:%S.%gZ')"
_FORMAT_SQL = (
    """select concat('{"type":"track","event":"', event,
    '","messageId":"ajs-', md5(concat($seed, '-', cast(seq as varchar))),
    '","userId":"', prefix, lpad(cast(k as varchar), 3, '0'),
    '","timestamp":"', at_text,
    '","originalTimestamp":"', at_text,
    '","sentAt":"', """ + _TS.format(c="ts_ms + 120") + """,
    '","receivedAt":"', """ + _TS.format(c="rcv_ms") + """,
    '","context":{"groupId":"', workspace,
    '","library":{"name":"analytics.js","version":"2.11.1"}},"properties":{"source":"',
    (case when k % 3 = 0 then 'app' else 'web' end), '"},"version":2}', chr(10)) as line
    from (select event, seq, prefix, k, ts_ms, rcv_ms, workspace, """ + _TS.format(c="ts_ms") + """ as at_text
          from ev)"""
)


def _write_lines(reader, path: Path) -> None:
    """Write the text of a one-column reader of lines (each ending in a newline) as it comes: the
    column's character buffer, no copy per line."""
    with path.open("wb") as f:
        for batch in reader:
            col = batch.column(0)  # never null: concat() skips nulls (write_day refuses a null field)
            if not len(col):
                continue
            width = np.int64 if pa.types.is_large_string(col.type) else np.int32
            offsets = np.frombuffer(col.buffers()[1], width)[col.offset:col.offset + len(col) + 1]
            f.write(memoryview(col.buffers()[2])[int(offsets[0]):int(offsets[-1])])


class SegmentWriter:
    """Draws each day's product events (numpy, its own random stream) and hands them to ``files``, an
    :class:`EventFiles` here or the simulator's events process (writer.py) that formats and writes them.
    What it hands over are integers only (event and account codes, times): the text columns are looked up
    where the lines are formatted, off the simulation's process."""

    def __init__(self, files, seed: int, users_cap: int, events_per_active_user: float, last_day: dt.date):
        self.files, self.seed = files, seed
        self.cap, self.rate, self.last_day = users_cap, events_per_active_user, last_day
        self.rng = np.random.default_rng([seed, 3])
        self.pending: dict[dt.date, list[pa.Table]] = {}
        self.seq = 0
        self.seen: np.ndarray | None = None
        self.total = 0
        self.late = 0
        self.duplicates = 0

    def _setup(self, company) -> None:
        accts = company.accounts
        self.seen = np.zeros(len(accts) * self.cap, dtype=bool)
        self.prefixes = [company.ids.product_user(a.n, 0)[:-3] for a in accts]
        self.files.accounts(self.prefixes, [a.workspace for a in accts])

    def day(self, company, day: dt.date) -> None:
        if self.seen is None:
            self._setup(company)
        lo, _ = day_bounds(day)
        accts = company.accounts
        day_idx = (day - company.spec.start_date).days
        live = np.nonzero(company.alive & company.arrived & ~company.no_usage)[0]
        rows_acct, rows_k, rows_ev = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        identify: list = []
        if len(live):
            h = company.h[live]
            users = np.minimum(company.seats[live], self.cap)
            acct_of_user = np.repeat(live, users)
            h_of_user = np.repeat(h, users)
            starts = np.repeat(np.cumsum(users) - users, users)
            k = np.arange(len(acct_of_user)) - starts
            p = 0.06 + 0.5 * h_of_user
            p = np.where((k == 0) & ~company.champion_engaged[acct_of_user], 0.01, p)
            if day.weekday() >= 5:
                p = p * 0.3
            active = self.rng.random(len(p)) < p
            a_u, k_u, h_u = acct_of_user[active], k[active], h_of_user[active]
            n_ev = 1 + self.rng.poisson(self.rate * (0.5 + h_u))
            ra = np.repeat(a_u, n_ev)
            rk = np.repeat(k_u, n_ev)
            rh = np.repeat(h_u, n_ev)
            # key features only once the account reached its first value; adoption grows with health
            valued = company.value_day_idx[ra] <= day_idx
            avail = company.avail[ra]
            adopted = np.clip(np.round(avail * (0.25 + 0.75 * rh)), 1, avail).astype(np.int64)
            use_feature = valued & (self.rng.random(len(ra)) < 0.5)
            feat = (self.rng.random(len(ra)) * adopted).astype(np.int64)
            gen = (self.rng.random(len(ra)) * _N_GENERIC).astype(np.int64)
            ev = np.where(use_feature, _N_GENERIC + feat, gen)
            rows_acct.append(ra), rows_k.append(rk), rows_ev.append(ev)
            # the first time a user shows up, the app sends identify and group calls
            flat = a_u * self.cap + k_u
            new = flat[~self.seen[flat]]
            self.seen[new] = True
            for f in new:
                identify.append((accts[int(f // self.cap)], int(f % self.cap), lo))
        # onboarding milestones and sign-up happen to the champion on their planned days
        planned = company.milestones.pop(day, [])
        if planned:
            rows_acct.append(np.array([n for n, _ in planned], np.int64))
            rows_k.append(np.zeros(len(planned), np.int64))
            rows_ev.append(np.array([_EV[name] for _, name in planned], np.int64))
        ra, rk, ev = (np.concatenate(x) for x in (rows_acct, rows_k, rows_ev))
        n = len(ra)
        ts_ms = lo * 1000 + self.rng.integers(7 * 3600_000, 22 * 3600_000, n)
        delay_days = np.where(self.rng.random(n) < 0.02, self.rng.integers(1, 4, n), 0)
        rcv_ms = ts_ms + self.rng.integers(150, 2500, n) + delay_days * 86400_000
        seq = self.seq + np.arange(n, dtype=np.int64)
        self.seq += n
        table = self._table(ra, rk, ev, ts_ms, rcv_ms, seq)
        self.late += int((delay_days > 0).sum())
        for d in (1, 2, 3):
            sel = np.nonzero(delay_days == d)[0]
            if len(sel):
                self.pending.setdefault(day + dt.timedelta(days=d), []).append(table.take(sel))
        today = table.take(np.nonzero(delay_days == 0)[0])
        # duplicates: the same message delivered twice, the same day or the next
        dup = np.nonzero(self.rng.random(today.num_rows) < 0.003)[0]
        if len(dup):
            self.duplicates += len(dup)
            half = len(dup) // 2
            self.pending.setdefault(day + dt.timedelta(days=1), []).append(today.take(dup[:half]))
            today = pa.concat_tables([today, today.take(dup[half:])])
        parts = [today] + self.pending.pop(day, [])
        self._write(day, pa.concat_tables(parts), identify)

    @staticmethod
    def _table(ra, rk, ev, ts_ms, rcv_ms, seq) -> pa.Table:
        return pa.table({name: pa.array(values, pa.int64()) for name, values in (
            ("event", ev), ("seq", seq), ("account", ra), ("k", rk), ("ts_ms", ts_ms), ("rcv_ms", rcv_ms))})

    def _write(self, day: dt.date, table: pa.Table, identify: list) -> None:
        lines = []
        for acct, k, lo in identify:
            lines.extend(dumps(x) for x in self._identify_lines(acct, k, lo))
        self.total += table.num_rows + len(lines)
        self.files.day(day, table, lines)

    def _identify_lines(self, acct, k: int, lo: int) -> list[dict]:
        user = f"{self.prefixes[acct.n]}{k:03d}"  # equals the Contact's Product_User_Id__c where one exists
        ts = dt.datetime.fromtimestamp(lo + 6 * 3600 + k, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        email = acct.contacts[k]["Email"] if k < len(acct.contacts) else f"user{k}@{acct.workspace}.example"
        base = {"messageId": f"ajs-id-{acct.workspace}-{k:03d}", "userId": user, "timestamp": ts,
                "originalTimestamp": ts, "sentAt": ts, "receivedAt": ts, "context": {"library": {
                    "name": "analytics.js", "version": "2.11.1"}}, "integrations": {}, "version": 2}
        group = dict(base, type="group", messageId=f"ajs-gr-{acct.workspace}-{k:03d}", groupId=acct.workspace,
                     traits={"name": acct.name, "plan": acct.tier, "industry": acct.industry})
        return [dict(base, type="identify", traits={"email": email}), group]


class EventFiles:
    """Formats and writes the events of each received day (:func:`write_day`) from :class:`SegmentWriter`'s
    integer columns, with the accounts' text (user id prefix, workspace) it was given once."""

    def __init__(self, con: duckdb.DuckDBPyConnection, landing: Path, seed: int):
        self.con, self.landing, self.seed = con, landing, seed
        self.names = pa.array(EVENT_NAMES)

    def accounts(self, prefixes: list[str], workspaces: list[str]) -> None:
        self.prefixes, self.workspaces = pa.array(prefixes), pa.array(workspaces)

    def day(self, day: dt.date, rows: pa.Table, identify_lines: list[str]) -> None:
        event, account = (rows[name].combine_chunks() for name in ("event", "account"))
        table = pa.table({
            "event": self.names.take(event), "seq": rows["seq"], "prefix": self.prefixes.take(account),
            "k": rows["k"], "ts_ms": rows["ts_ms"], "rcv_ms": rows["rcv_ms"], "workspace": self.workspaces.take(account),
        })
        write_day(self.con, self.landing, self.seed, day, table, identify_lines)


def write_day(con: duckdb.DuckDBPyConnection, landing: Path, seed: int, day: dt.date, table: pa.Table,
              identify_lines: list[str]) -> None:
    """Write the events Segment received on ``day``: part 1 the track calls (formatted by DuckDB), part 2
    the identify and group calls (JSON text), if any."""
    if table.num_rows:
        if any(col.null_count for col in table.columns):
            raise ValueError(f"a product event of {day} has a null field")  # cannot happen: every input is set
        path = events_part(landing, day, 1)  # the format's path; DuckDB formats the lines
        con.register("ev", table)
        try:
            _write_lines(con.sql(_FORMAT_SQL, params={"seed": str(seed)}).to_arrow_reader(), path)
        finally:
            con.unregister("ev")
    else:
        write_event_lines(landing, day, [], part=1)
    if identify_lines:
        write_event_lines(landing, day, identify_lines, part=2)
