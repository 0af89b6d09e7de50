"""Segment-shaped product events, generated a day at a time and written by DuckDB.

Volumes reach tens of millions of events, so nothing here loops per event in Python: numpy draws the
day's events as arrays and DuckDB formats them as JSON lines. Events land in the folder of the day
Segment *received* them: a few arrive up to three days late, and a few arrive twice.
"""

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from . import catalog
from .store import day_bounds

EVENT_NAMES = catalog.GENERIC_EVENTS + catalog.KEY_FEATURES + tuple(
    m for m in catalog.ONBOARDING_MILESTONES if m not in catalog.KEY_FEATURES) + ("Account Created", "Signed Up")
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_N_GENERIC = len(catalog.GENERIC_EVENTS)

_FORMAT_SQL = """
copy (
    select
        'track' as type,
        event,
        'ajs-' || md5($seed || '-' || cast(seq as varchar)) as messageId,
        userId,
        strftime(epoch_ms(ts_ms), '%Y-%m-%dT%H:%M:%S.%gZ') as timestamp,
        strftime(epoch_ms(ts_ms), '%Y-%m-%dT%H:%M:%S.%gZ') as originalTimestamp,
        strftime(epoch_ms(ts_ms + 120), '%Y-%m-%dT%H:%M:%S.%gZ') as sentAt,
        strftime(epoch_ms(rcv_ms), '%Y-%m-%dT%H:%M:%S.%gZ') as receivedAt,
        struct_pack(groupId := workspace, library := struct_pack(name := 'analytics.js', version := '2.11.1'))
            as context,
        struct_pack(source := source) as properties,
        2 as version
    from ev
) to '{path}' (format json)
"""


class SegmentWriter:
    def __init__(self, out_dir: Path, con: duckdb.DuckDBPyConnection, seed: int, users_cap: int,
                 events_per_active_user: float, last_day: dt.date):
        self.out, self.con, self.seed = out_dir, con, seed
        self.cap, self.rate, self.last_day = users_cap, events_per_active_user, last_day
        self.rng = np.random.default_rng([seed, 3])
        self.pending: dict[dt.date, list[pa.Table]] = {}
        self.seq = 0
        self.seen: np.ndarray | None = None
        self.total = 0
        self.late = 0
        self.duplicates = 0
        self.names = pa.array(EVENT_NAMES)

    def _setup(self, company) -> None:
        accts = company.accounts
        self.seen = np.zeros(len(accts) * self.cap, dtype=bool)
        self.workspaces = pa.array([a.workspace for a in accts])
        self.prefixes = np.array([company.ids.product_user(a.n, 0)[:-3] for a in accts], dtype=object)

    def day(self, company, day: dt.date) -> None:
        if self.seen is None:
            self._setup(company)
        lo, _ = day_bounds(day)
        accts = company.accounts
        live = np.nonzero(company.alive & company.arrived)[0]
        live = np.array([i for i in live if not accts[i].no_usage], dtype=np.int64)
        rows_acct, rows_k, rows_ev = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        identify: list[dict] = []
        if len(live):
            h = company.h[live]
            users = np.minimum(np.array([accts[i].seats for i in live]), self.cap)
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
            valued = np.array([accts[i].value_day is not None and accts[i].value_day <= day for i in ra], dtype=bool)
            avail = np.array([catalog.PLAN_FEATURES.get(accts[i].tier, 3) for i in ra])
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
        for acct in self._milestone_accounts(company, day):
            for name in acct[1]:
                rows_acct.append(np.array([acct[0]])), rows_k.append(np.array([0])), rows_ev.append(np.array([_EV[name]]))
        ra, rk, ev = (np.concatenate(x) for x in (rows_acct, rows_k, rows_ev))
        n = len(ra)
        ts_ms = lo * 1000 + self.rng.integers(7 * 3600_000, 22 * 3600_000, n)
        delay_days = np.where(self.rng.random(n) < 0.02, self.rng.integers(1, 4, n), 0)
        rcv_ms = ts_ms + self.rng.integers(50, 2000, n) + delay_days * 86400_000
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

    def _milestone_accounts(self, company, day: dt.date):
        idx = company.arrive_day == (day - company.spec.start_date).days
        for i in np.nonzero(idx)[0]:
            a = company.accounts[i]
            if not a.no_usage:
                a._arrival_events = ["Account Created", "Signed Up"]
        for i in np.nonzero(company.arrived)[0]:
            a = company.accounts[i]
            if a.no_usage:
                continue
            names = getattr(a, "_arrival_events", [])
            if names:
                a._arrival_events = []
            names = names + [m for m, d in a.milestone_days.items() if d == day]
            if names:
                yield i, names

    def _table(self, ra, rk, ev, ts_ms, rcv_ms, seq) -> pa.Table:
        prefixes = self.prefixes[ra] if len(ra) else np.empty(0, dtype=object)
        user = [f"{p}{k:03d}" for p, k in zip(prefixes, rk)]
        return pa.table({
            "event": self.names.take(pa.array(ev, pa.int64())),
            "seq": pa.array(seq, pa.int64()),
            "userId": pa.array(user, pa.string()),
            "ts_ms": pa.array(ts_ms, pa.int64()),
            "rcv_ms": pa.array(rcv_ms, pa.int64()),
            "workspace": self.workspaces.take(pa.array(ra, pa.int64())),
            "source": pa.array(np.where(rk % 3 == 0, "app", "web").astype(object), pa.string()),
        })

    def _write(self, day: dt.date, table: pa.Table, identify: list) -> None:
        folder = self.out / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        self.total += table.num_rows
        path = folder / "part-00001.jsonl"
        if table.num_rows:
            self.con.register("ev", table)
            self.con.execute(_FORMAT_SQL.replace("{path}", str(path)), {"seed": str(self.seed)})
            self.con.unregister("ev")
        else:
            path.write_text("")
        if identify:
            lines = []
            for acct, k, lo in identify:
                lines.extend(self._identify_lines(acct, k, lo))
            self.total += len(lines)
            (folder / "part-00002.jsonl").write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))

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
