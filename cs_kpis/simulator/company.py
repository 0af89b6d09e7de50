"""The simulated SaaS company: accounts with a hidden, drifting health that drives everything they do.

The simulation is causal: one pass over the days, each day's random draws depending only on the past,
so the company as of any day is the same whatever later day the run stops at. Every object state goes
to the version store (see ``store.py``); product events go straight to daily files (``segment.py``);
the exact MRR history of every subscription is kept for the ground truth (``truth.py``).

What a pipeline may observe is only what the vendors' payloads carry. The hidden health ``h`` never
leaves this module except through the ground-truth folder.
"""

import contextlib
import copy
import datetime as dt
import gc
import heapq
import random
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from . import catalog
from .ids import IdFactory
from .landing import day_bounds
from .sizes import SizeSpec
from .store import VersionStore

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
INDUSTRIES = ("Technology", "Financial Services", "Healthcare", "Retail", "Manufacturing", "Education", "Media")
COUNTRIES = {"usd": ("United States", "Canada"), "eur": ("Germany", "France", "Netherlands"),
             "gbp": ("United Kingdom",)}
FIRST = ("Ava", "Ben", "Chloe", "Dan", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam", "Maya",
         "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Yara", "Zoe")
LAST = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Khan", "Lopez",
        "Müller", "Novak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Umeh", "Varga", "Weber", "Young")
NAME_A = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Hooli",
          "Vandelay", "Pied Piper", "Wonka", "Aperture", "Massive", "Nakatomi", "Oscorp", "Gringotts", "Monarch",
          "Dunder", "Prestige", "Sterling", "Bluth", "Duff", "Krusty", "Oceanic", "Paper Street", "Virtucon")
NAME_B = ("Systems", "Labs", "Group", "Holdings", "Analytics", "Logistics", "Health", "Capital", "Foods", "Media",
          "Robotics", "Energy", "Retail", "Partners", "Software", "Networks", "Bank", "Insurance", "Studios")

DELINQUENT_AFTER_DAYS = 30

TRACKED_FIELDS = {"OwnerId": ("Owner", "owner_id"), "CSM__c": ("CSM__c", "csm_id"),
                  "Segment__c": ("Segment__c", "segment"), "CSM_Sentiment__c": ("CSM_Sentiment__c", "csm_sentiment")}
"""Account fields with field history tracking on: record field -> (AccountHistory.Field, ground-truth name).
Salesforce names the standard owner field ``Owner`` in the history; custom fields keep their API name"""
LOOKUP_FIELDS = {"OwnerId", "CSM__c"}
"""lookups to User: Salesforce writes two history rows per change, the Ids (DataType EntityId) and the names (Text)"""


def ts_of(day: dt.date, seconds: int) -> int:
    return day_bounds(day)[0] + seconds


def day_of(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


_EPOCH = dt.date(1970, 1, 1)
_DAY_TEXT: dict[int, str] = {}
"""days since the epoch -> "YYYY-MM-DD": the vendor timestamps below are formatted millions of times
(tickets, metrics, ratings), and a day's date part is the same for all of them"""
_HOUR_TEXT = [f"T{h:02d}:" for h in range(24)]
_MIN_SEC_TEXT = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
"""and the time of day from two lists (seconds of the hour -> "MM:SS"): a third of the f-string's time"""


def _utc_text(ts: int) -> str:
    """``ts`` (Unix seconds) as "YYYY-MM-DDTHH:MM:SS" in UTC, what strftime("%Y-%m-%dT%H:%M:%S") of the
    UTC datetime gives, without a datetime per call."""
    if type(ts) is not int:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    days, secs = divmod(ts, 86400)
    day = _DAY_TEXT.get(days)
    if day is None:
        day = _DAY_TEXT[days] = (_EPOCH + dt.timedelta(days=days)).strftime("%Y-%m-%d")
    h, rest = divmod(secs, 3600)
    return day + _HOUR_TEXT[h] + _MIN_SEC_TEXT[rest]


def sf_datetime(ts: int) -> str:
    return _utc_text(ts) + ".000+0000"


def zd_datetime(ts: int) -> str:
    return _utc_text(ts) + "Z"


def add_months(ts: int, months: int) -> int:
    """Stripe's billing-cycle arithmetic: same day-of-month and time, clamped to the month's end."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(1)).day
    return int(d.replace(year=y, month=m, day=min(d.day, last)).timestamp())


def _copied(discounts: list[dict]) -> list[dict]:
    """A deep copy of a discounts list (most are empty: no copy machinery for those)."""
    return copy.deepcopy(discounts) if discounts else []


@dataclass
class Item:
    id: str
    price: catalog.Price
    quantity: int | None
    created: int
    # the item's own discounts (API 2025-03-31.basil items.data[].discounts), applied to it before the
    # subscription's; a few real subscriptions have one (a discount on one product of the subscription)
    discounts: list[dict] = field(default_factory=list)


def _discount_ids(obj: dict) -> dict:
    """``obj`` (a subscription, or the changed fields of one) as an event carries it: the ``discounts`` of the
    subscription and of each item as ids, not objects (Stripe never expands an event's object)."""
    out = dict(obj)
    if "discounts" in out:
        out["discounts"] = [d["id"] if isinstance(d, dict) else d for d in out["discounts"]]
    if isinstance(out.get("items"), dict):
        out["items"] = {**out["items"], "data": [
            {**it, "discounts": [d["id"] if isinstance(d, dict) else d for d in it.get("discounts", [])]}
            for it in out["items"]["data"]]}
    return out


def _invoice_discount_ids(inv: dict) -> dict:
    """``inv`` as an invoice event carries it: its discounts and each line's as ids (the list has them
    expanded, expand[]=data.discounts, data.lines.data.discounts)."""
    def ids(ds):
        return [d["id"] if isinstance(d, dict) else d for d in ds]

    out = dict(inv)
    if "discounts" in out:
        out["discounts"] = ids(out["discounts"])
    if isinstance(out.get("lines"), dict):
        out["lines"] = {**out["lines"], "data": [{**li, "discounts": ids(li["discounts"])} if "discounts" in li
                                                 else li for li in out["lines"]["data"]]}
    return out


def _lowers_mrr(d: dict, currency: str) -> bool:
    """Whether discount ``d`` lowers MRR in ``currency``: forever or repeating (never once), with a percent_off
    or an amount_off Stripe applies in ``currency`` (the coupon's own, or its currency_options' amount for it)."""
    c = d["coupon"]
    return c["duration"] != "once" and (
        c["percent_off"] is not None or catalog.coupon_amount_off(c["id"], currency) is not None)


def _discounted(amount: Fraction, discounts: list[dict], currency: str, months: int) -> Fraction:
    """``amount`` (MRR, minor units) after the discounts that lower MRR (``_lowers_mrr``), in order, each
    applied to what the ones before it left; an amount_off per month of the period."""
    for d in discounts:
        if not _lowers_mrr(d, currency):
            continue
        c = d["coupon"]
        if c["percent_off"] is not None:
            amount = amount * (1 - Fraction(str(c["percent_off"])) / 100)
        else:
            amount = max(Fraction(0), amount - Fraction(catalog.coupon_amount_off(c["id"], currency), months))
    return amount


def _net_of_discounts(items: list["Item"], item: "Item", discounts: list[dict], currency: str) -> Fraction:
    """What ``item`` (one of ``items``, a subscription's items at one moment) costs a whole billing period
    after the discounts: its own, then the subscription's ``discounts`` (each applied to what the ones before it
    left), every one that lowers MRR (``_discounted``: never a once coupon, which only its first invoice had).
    ``item`` must be the subscription's one licensed item (the rest are metered), as in every simulated
    subscription (asserted), so the subscription's discounts fall on it whole: how Stripe shares an amount_off
    among several items (in classic billing mode evenly, in flexible mode by their amounts) never comes up.
    Stripe (API 2025-03-31.basil, classic billing mode) prorates this net amount: a proration's
    ``amount`` is already net of the subscription's discounts. Its documentation says so where Stripe made it
    optional, in 2025-09-30.clover (``billing_mode.flexible.proration_discounts``): the behaviour kept as
    ``included``, the only one before, has the proration line's amount net (after discounts), its
    ``discount_amounts`` without the item's own discounts and with the subscription's at amount 0; ``itemized``
    (gross amount, real discount amounts) is opt-in. And a proration is never discountable (the invoice item's
    and the line's ``discountable``: "always false for prorations"), so no invoice discount applies to it again."""
    licensed = [i for i in items if not i.price.metered]
    assert len(licensed) == 1 and licensed[0] is item, "a simulated subscription has one licensed item"
    own = _discounted(Fraction(item.price.amount(item.quantity)), item.discounts, currency, 1)
    return _discounted(own, discounts, currency, 1)


@dataclass
class Sub:
    id: str
    n: int
    account: "Account"
    customer_id: str
    currency: str
    created: int
    interval_key: str
    items: list[Item]
    status: str = "active"
    # the discounts attached to the subscription, in Stripe's order (a real account stacks several on a few)
    discounts: list[dict] = field(default_factory=list)
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    cps: int = 0
    cpe: int = 0
    latest_invoice: str | None = None
    is_addon: bool = False
    # ground truth bookkeeping: (ts, exact local MRR in minor units) at every change, and past-due spells
    mrr_history: list[tuple[int, Fraction]] = field(default_factory=list)
    past_due_spells: list[list[int | None]] = field(default_factory=list)
    last_event_ts: int = 0
    # proration lines of a change that was not invoiced at once (Stripe's pending invoice items): they
    # go on the subscription's next invoice, as with proration_behavior=create_prorations
    pending_lines: list[tuple] = field(default_factory=list)
    # subscription item id -> (invoice, line) of the latest line that charged the item for the current period
    # (its period's line, or the charge of a change), None while that charge is a pending invoice item: what a
    # credit for the item's unused time credits (the line's proration_details.credited_items)
    debits: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    credit_balance: int = 0  # minor units the customer is owed (Stripe's negative customer balance)

    @property
    def months(self) -> int:
        return catalog.INTERVALS[self.interval_key][2]

    @property
    def main_item(self) -> Item:
        return self.items[0]

    def list_mrr(self) -> Fraction:
        """Undiscounted monthly recurring revenue of the licensed items, in minor units."""
        return sum((i.price.amount(i.quantity) / i.price.months
                    for i in self.items if not i.price.metered), Fraction(0))

    def local_mrr(self) -> Fraction:
        """MRR in the subscription's currency (minor units), per the KPI definitions: each licensed item
        after its own discounts, summed, then the subscription's discounts (Stripe: "subscription item
        discounts are applied before subscription discounts"); every discount that lowers MRR (forever, or
        repeating while attached; never once), in the order Stripe lists them, each applied to what the ones
        before it left; an amount_off in the subscription's currency (the coupon's own, or its
        currency_options' amount for it; Stripe applies no other), per month of the billing period."""
        if self.status in ("trialing", "canceled", "incomplete", "incomplete_expired", "unpaid", "paused") \
                or self.ended_at is not None:
            return Fraction(0)
        mrr = sum((_discounted(i.price.amount(i.quantity) / i.price.months, i.discounts, self.currency, i.price.months)
                   for i in self.items if not i.price.metered), Fraction(0))
        return _discounted(mrr, self.discounts, self.currency, self.months)


@dataclass
class Account:
    n: int
    sf_id: str | None  # None for billing customers that have no CRM account
    name: str
    segment: str
    industry: str
    country: str
    currency: str
    created: int
    seats: int
    tier: str
    interval_key: str
    workspace: str | None
    owner_id: str = ""
    csm_id: str = ""
    parent: "Account | None" = None
    customer_id: str = ""
    contacts: list[dict] = field(default_factory=list)
    subs: list[Sub] = field(default_factory=list)
    sentiment: str | None = None
    no_usage: bool = False
    churned_at: int | None = None
    value_day: dt.date | None = None
    milestone_days: dict = field(default_factory=dict)
    crm_version: dict = field(default_factory=dict)

    def active_subs(self) -> list[Sub]:
        return [s for s in self.subs if s.ended_at is None]


GC_EVERY_DAYS = 365
"""while the simulation runs, Python's cyclic garbage collector runs by hand once per this many simulated days"""


@contextlib.contextmanager
def _cyclic_gc_by_hand():
    """Python's automatic cyclic garbage collection off while the simulation runs (``Company.run`` collects by hand
    once a simulated year instead), then as it was. The simulation keeps millions of long-lived objects (accounts,
    subscriptions, the agenda's pending tickets and renewals) and makes almost no cyclic garbage, yet each automatic
    full collection walked every one of them: at 25,000 accounts, 69 full collections took 26.8 of the main process's
    138.4 CPU seconds, and with them off the main process used 93.9 CPU s at the same peak RSS (587 against 583 MB)
    and wrote the same bytes (BENCHMARKS.md, session 32). Reference counting still frees everything else at once."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Company:
    """Runs the simulation day by day from the size's start date to ``last_day`` (inclusive)."""

    def __init__(self, spec: SizeSpec, seed: int, store: VersionStore, last_day: dt.date, events_writer=None):
        self.spec, self.seed, self.store, self.last_day = spec, seed, store, last_day
        self.ids = IdFactory(seed)
        self.rnd = random.Random(seed * 7919 + 17)
        # draws for the rare real-Stripe shapes (stacked discounts, same-second events): a stream of their
        # own, so that adding them leaves the rest of the company as it was
        self.shape_rnd = random.Random(seed * 104729 + 3)
        # and one for item-level discounts, added later, for the same reason
        self.item_discount_rnd = random.Random(seed * 15485863 + 11)
        self.rng = np.random.default_rng([seed, 2])
        self.events_writer = events_writer
        self.fx = catalog.fx_rates(spec.start_date - dt.timedelta(days=31), spec.end_date, seed)
        self.prices = catalog.build_prices(self.ids)
        self._price_objects: dict[str, dict] = {}
        self.t0 = ts_of(spec.start_date, 0) - 86400 * 30
        self.agenda: list[tuple[int, int, str, tuple]] = []
        self._agenda_seq = 0
        self._soonest = 0
        """the earliest time an agenda item scheduled now can run at (:meth:`_runs_at`)"""
        self.counters: dict[str, int] = {}
        self.edge_cases: dict[str, list[str]] = {}
        self.accounts: list[Account] = []
        self.customers_only: list[Account] = []
        self.org_ids: dict[int, int] = {}  # account n -> zendesk organization id
        self.unmatched_orgs: list[int] = []
        self.next_ticket = 1
        self.tickets_open: dict[int, dict] = {}
        self.next_rating = 100_000_000
        # ticket id -> the satisfaction_rating a customer gave after the ticket was solved: the closed ticket
        # keeps it (Zendesk keeps the rating on a closed ticket), where the solved version said "offered"
        self.rated_tickets: dict[int, dict] = {}
        self.next_nps = 4_100_000
        # owner changes draw from their own stream, so adding them left every other draw as it was
        self.owner_rnd = random.Random(seed * 104_729 + 3)
        self.user_names: dict[str, str] = {}
        self.crm_truth: list[tuple[int, str, str, str | None]] = []
        """(ts, Account Id, ground-truth field name, value): every value the tracked fields took (truth.py)"""
        self._make_users()
        self._make_accounts()

    # ---------------------------------------------------------------- setup

    def _count(self, kind: str) -> int:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]

    def edge(self, name: str, ref: str) -> None:
        refs = self.edge_cases.setdefault(name, [])
        if len(refs) < 20:
            refs.append(ref)

    def _make_users(self) -> None:
        n_csm = max(3, self.spec.accounts // 60)
        n_ae = max(2, self.spec.accounts // 120)
        self.csms, self.aes = [], []
        for role, n, out in (("CSM", n_csm, self.csms), ("AE", n_ae, self.aes)):
            for k in range(n):
                i = self._count("user")
                first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
                uid = self.ids.salesforce("005", i)
                ts = self.t0 + i * 3600
                self.store.add("crm/User", uid, ts, {
                    "attributes": {"type": "User", "url": f"/services/data/v62.0/sobjects/User/{uid}"},
                    "Id": uid, "Name": f"{first} {last}", "Email": f"{first.lower()}.{last.lower()}@simsaas.example",
                    "Title": "Customer Success Manager" if role == "CSM" else "Account Executive",
                    "UserRoleName__c": role, "IsActive": True, "CreatedDate": sf_datetime(ts),
                    "SystemModstamp": sf_datetime(ts),
                })
                out.append(uid)
                self.user_names[uid] = f"{first} {last}"

    def _make_accounts(self) -> None:
        spec, ra = self.spec, np.random.default_rng([self.seed, 1])
        n = spec.accounts
        horizon = (spec.end_date - spec.start_date).days
        # arrivals accelerate: a growing company; a seed cohort arrives in the first weeks
        u = np.sort(ra.random(n))
        arrive = np.where(u < 0.08, u / 0.08 * 30, 30 + (u - 0.08) / 0.92 * (horizon - 30)).astype(int)
        seg = ra.choice(3, n, p=[0.55, 0.30, 0.15])
        cur = ra.choice(3, n, p=[0.6, 0.25, 0.15])
        self.h = ra.beta(5, 2, n)
        self.mu = self.h.copy()
        self.alive = np.zeros(n, dtype=bool)      # has a live (trialing/active/past_due) subscription
        self.arrived = np.zeros(n, dtype=bool)
        self.champion_engaged = np.ones(n, dtype=bool)
        self.arrive_day = arrive
        # per-account arrays read by the daily vectorised steps; kept in step with the Account objects
        self.seats = np.zeros(n, dtype=np.int64)
        self.avail = np.zeros(n, dtype=np.int64)
        self.no_usage = np.zeros(n, dtype=bool)
        self.value_day_idx = np.full(n, 1 << 30, dtype=np.int64)
        self.milestones: dict[dt.date, list[tuple[int, str]]] = {}
        for i in range(n):
            s = int(seg[i])
            currency = catalog.CURRENCIES[int(cur[i])]
            seats = int([ra.integers(2, 16), ra.integers(15, 81), ra.integers(80, 401)][s])
            tier = ra.choice([["starter", "growth"], ["growth", "enterprise"], ["enterprise", "growth"]][s],
                             p=[[0.5, 0.5], [0.8, 0.2], [0.9, 0.1]][s])
            interval = ra.choice(["month", "quarter", "year"], p=[[0.75, 0.1, 0.15], [0.6, 0.1, 0.3],
                                                                  [0.35, 0.15, 0.5]][s])
            name = f"{NAME_A[int(ra.integers(len(NAME_A)))]} {NAME_B[int(ra.integers(len(NAME_B)))]}"
            day = spec.start_date + dt.timedelta(days=int(arrive[i]))
            acct = Account(
                n=i, sf_id=self.ids.salesforce("001", i), name=f"{name} {i}", segment=SEGMENTS[s],
                industry=INDUSTRIES[int(ra.integers(len(INDUSTRIES)))],
                country=str(ra.choice(COUNTRIES[currency])), currency=currency,
                created=ts_of(day, int(ra.integers(8 * 3600, 18 * 3600))), seats=seats, tier=str(tier),
                interval_key=str(interval), workspace=self.ids.workspace(i),
                no_usage=bool(ra.random() < 0.03),
            )
            acct.owner_id = self.aes[i % len(self.aes)]
            acct.csm_id = self.csms[int(ra.integers(len(self.csms)))]
            # a few accounts are subsidiaries of an earlier, larger account
            if i > 20 and ra.random() < 0.04:
                cands = [a for a in self.accounts[-200:] if a.segment != "SMB" and a.parent is None]
                if cands:
                    acct.parent = cands[int(ra.integers(len(cands)))]
            self.accounts.append(acct)
            self.seats[i], self.avail[i], self.no_usage[i] = seats, catalog.PLAN_FEATURES[acct.tier], acct.no_usage
        for k in range(spec.unmatched_customers):
            day = spec.start_date + dt.timedelta(days=int(ra.integers(0, horizon)))
            cur_k = catalog.CURRENCIES[k % 3]
            self.customers_only.append(Account(
                n=n + k, sf_id=None, name=f"Self-serve customer {k}", segment="SMB", industry="Technology",
                country=COUNTRIES[cur_k][0], currency=cur_k, created=ts_of(day, 40000 + k), seats=1, tier="starter",
                interval_key="month", workspace=None,
            ))

    # ---------------------------------------------------------------- agenda

    def schedule(self, ts: int, action: str, *args) -> None:
        self._agenda_seq += 1
        heapq.heappush(self.agenda, (ts, self._agenda_seq, action, args))

    def _runs_at(self, ts: int) -> int:
        """When an item scheduled now at ``ts`` runs, if the simulation gets that far: at ``ts``, or at the
        next day's start when it is scheduled after this day's agenda ran (new tickets) for a time within
        the day."""
        return max(ts, self._soonest)

    def run(self) -> None:
        with _cyclic_gc_by_hand():
            self._run()

    def _run(self) -> None:
        day = self.spec.start_date
        self._write_static()
        while day <= self.last_day:
            if (day - self.spec.start_date).days % GC_EVERY_DAYS == GC_EVERY_DAYS - 1:
                gc.collect()  # what cyclic garbage the simulated days left (_cyclic_gc_by_hand)
            lo, hi = day_bounds(day)
            self._soonest = lo
            self._daily_health()
            for acct in self._arrivals(day):
                self._account_arrives(acct, day)
            while self.agenda and self.agenda[0][0] < hi:
                ts, _, action, args = heapq.heappop(self.agenda)
                getattr(self, "_on_" + action)(max(ts, lo), *args)
            self._soonest = hi  # the day's agenda is done: what is scheduled from here runs tomorrow or later
            self._support(day)
            self._nps(day)
            if self.events_writer is not None:
                self.events_writer.day(self, day)
            day += dt.timedelta(days=1)
        self.store.flush()

    def _arrivals(self, day: dt.date) -> list[Account]:
        idx = int((day - self.spec.start_date).days)
        out = [self.accounts[i] for i in np.nonzero(self.arrive_day == idx)[0]]
        out += [c for c in self.customers_only if day_of(c.created) == day]
        return out

    def _daily_health(self) -> None:
        n = len(self.h)
        shock = self.rng.random(n)
        down = shock < 0.0015
        up = shock > 0.9992
        self.mu[down] = np.clip(self.mu[down] - self.rng.uniform(0.2, 0.5, int(down.sum())), 0.02, 1)
        self.mu[up] = np.clip(self.mu[up] + self.rng.uniform(0.1, 0.3, int(up.sum())), 0, 0.98)
        # a champion often walks away when the account goes sour
        lost = down & (self.rng.random(n) < 0.5)
        self.champion_engaged[lost] = False
        self.h = np.clip(self.h + 0.04 * (self.mu - self.h) + self.rng.normal(0, 0.015, n), 0.0, 1.0)

    # ---------------------------------------------------------------- CRM

    def _write_static(self) -> None:
        t = self.t0
        for p in catalog.products(self.ids, t):
            self.store.add("billing/products", p["id"], t, p, sort_key=t)
        for pr in self.prices.values():
            # listed as GET /v1/prices?expand[]=data.tiers gives them: a tiered price with its tiers
            self.store.add("billing/prices", pr.id, t, pr.to_stripe(t, with_tiers=True), sort_key=t)
        # listed as GET /v1/coupons?expand[]=data.currency_options gives them (amounts in other currencies)
        for c in catalog.coupon_objects(t, with_currency_options=True):
            self.store.add("billing/coupons", c["id"], t, c, sort_key=t)

    def _emit_account(self, acct: Account, ts: int, **changes) -> None:
        v = acct.crm_version or {
            "attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{acct.sf_id}"},
            "Id": acct.sf_id, "Name": acct.name, "ParentId": acct.parent.sf_id if acct.parent else None,
            "OwnerId": acct.owner_id, "CSM__c": acct.csm_id, "Segment__c": acct.segment,
            "Industry": acct.industry, "BillingCountry": acct.country, "Type": "Customer",
            "CSM_Sentiment__c": None, "Product_Workspace_Id__c": acct.workspace,
            "NumberOfEmployees": acct.seats * 4, "CreatedDate": sf_datetime(acct.created), "IsDeleted": False,
        }
        before = acct.crm_version
        v = dict(v, **changes, LastModifiedDate=sf_datetime(ts), SystemModstamp=sf_datetime(ts))
        acct.crm_version = v
        self.store.add("crm/Account", acct.sf_id, ts, v)
        for name, (_, truth_name) in TRACKED_FIELDS.items():
            if not before or before.get(name) != v.get(name):
                self.crm_truth.append((ts, acct.sf_id, truth_name, v.get(name)))
            if before and before.get(name) != v.get(name):
                self._field_history(acct, ts, name, before.get(name), v.get(name))

    def _field_history(self, acct: Account, ts: int, name: str, old, new) -> None:
        """AccountHistory rows of one tracked field's change, as Salesforce writes them (queryAll shape)."""
        rows = [("EntityId", old, new), ("Text", self.user_names.get(old), self.user_names.get(new))] \
            if name in LOOKUP_FIELDS else [("DynamicEnum", old, new)]
        for data_type, old_value, new_value in rows:
            hid = self.ids.salesforce("017", self._count("account_history"))
            self.store.add("crm/AccountHistory", hid, ts, {
                "attributes": {"type": "AccountHistory", "url": f"/services/data/v62.0/sobjects/AccountHistory/{hid}"},
                "Id": hid, "AccountId": acct.sf_id, "Field": TRACKED_FIELDS[name][0], "DataType": data_type,
                "OldValue": old_value, "NewValue": new_value, "CreatedDate": sf_datetime(ts),
                "CreatedById": acct.csm_id, "IsDeleted": False,
            })

    def _account_arrives(self, acct: Account, day: dt.date) -> None:
        ts = acct.created
        if acct.sf_id:
            self.arrived[acct.n] = True
            self._emit_account(acct, ts)
            if acct.parent:
                self.edge("parent_child_accounts", f"{acct.parent.sf_id}>{acct.sf_id}")
            if acct.no_usage:
                self.edge("account_without_product_usage", acct.sf_id)
            self._make_contacts(acct, ts)
            self._opportunity(acct, ts, "New Business", "Closed Won", day, acct.seats * 300)
            org = 360_000_000_000 + acct.n * 7 + 3
            self.org_ids[acct.n] = org
            self.store.add("support/organizations", str(org), ts, self._org(org, acct.name, acct.sf_id, ts))
            self._plan_onboarding(acct, day)
        cid = self.ids.stripe("cus", acct.n)
        acct.customer_id = cid
        meta = {"salesforce_account_id": acct.sf_id} if acct.sf_id else {}
        if acct.sf_id is None and acct.n % 2 == 1:
            meta = {"salesforce_account_id": "001" + "5g" + "UNKNOWN" + f"{acct.n:03d}"[-3:] + "AAA"}
        if acct.sf_id is None:
            self.edge("billing_customer_without_crm_account", cid)
        self.store.add("billing/customers", cid, ts, {
            "id": cid, "object": "customer", "address": None, "balance": 0, "created": ts,
            "currency": acct.currency, "default_source": None, "delinquent": False, "description": None,
            "discount": None, "email": f"billing@{acct.name.lower().replace(' ', '')}.example",
            "invoice_prefix": cid[4:12].upper(), "invoice_settings": {"custom_fields": None,
                                                                       "default_payment_method": None, "footer": None},
            "livemode": False, "metadata": meta, "name": acct.name, "phone": None, "preferred_locales": ["en"],
            "shipping": None, "tax_exempt": "none", "test_clock": None,
        }, sort_key=ts)
        trial = acct.sf_id is not None and self.rnd.random() < 0.35
        self._start_subscription(acct, ts + 60, trial=trial, first=True)

    def _org(self, org: int, name: str, external_id: str | None, ts: int) -> dict:
        return {
            "url": f"https://simsaas.zendesk.com/api/v2/organizations/{org}.json", "id": org, "name": name,
            "shared_tickets": False, "shared_comments": False, "external_id": external_id,
            "created_at": zd_datetime(ts), "updated_at": zd_datetime(ts),
            "domain_names": [name.lower().replace(" ", "") + ".example"], "details": None, "notes": None,
            "group_id": None, "tags": [], "organization_fields": {},
        }

    def _make_contacts(self, acct: Account, ts: int) -> None:
        n_contacts = min(2 + acct.seats // 20, 6)
        for k in range(n_contacts):
            i = self._count("contact")
            cid = self.ids.salesforce("003", i)
            first, last = FIRST[(i * 3) % len(FIRST)], LAST[(i * 5) % len(LAST)]
            role = "Champion" if k == 0 else "Admin" if k == 1 else ("User" if k % 2 else None)
            c = {
                "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{cid}"},
                "Id": cid, "AccountId": acct.sf_id, "FirstName": first, "LastName": last,
                "Email": f"{first.lower()}.{last.lower()}{i}@{acct.name.lower().replace(' ', '')}.example",
                "Title": ["VP Operations", "Head of Analytics", "Analyst", "Engineer", "Director", "Manager"][k % 6],
                "Role__c": role, "Product_User_Id__c": self.ids.product_user(acct.n, k),
                "CreatedDate": sf_datetime(ts), "SystemModstamp": sf_datetime(ts),
            }
            acct.contacts.append(c)
            self.store.add("crm/Contact", cid, ts, c)

    def _opportunity(self, acct: Account, ts: int, typ: str, stage: str, close: dt.date, amount: float) -> str:
        i = self._count("opp")
        oid = self.ids.salesforce("006", i)
        closed = stage.startswith("Closed")
        self.store.add("crm/Opportunity", oid, ts, {
            "attributes": {"type": "Opportunity", "url": f"/services/data/v62.0/sobjects/Opportunity/{oid}"},
            "Id": oid, "AccountId": acct.sf_id, "Name": f"{acct.name} - {typ} {close.isoformat()}", "Type": typ,
            "StageName": stage, "IsClosed": closed, "IsWon": stage == "Closed Won", "CloseDate": close.isoformat(),
            "Amount": round(float(amount), 2), "CurrencyIsoCode": acct.currency.upper(), "OwnerId": acct.owner_id,
            "CreatedDate": sf_datetime(ts), "SystemModstamp": sf_datetime(ts),
        })
        return oid

    def _plan_onboarding(self, acct: Account, day: dt.date) -> None:
        if acct.no_usage:
            return
        self.milestones.setdefault(day, []).extend([(acct.n, "Account Created"), (acct.n, "Signed Up")])
        h = float(self.h[acct.n])
        for k, m in enumerate(catalog.ONBOARDING_MILESTONES):
            # healthier accounts reach each milestone sooner, and are likelier to reach it at all
            if self.rnd.random() < 0.55 + 0.45 * h:
                acct.milestone_days[m] = day + dt.timedelta(days=int(1 + k * 3 + self.rnd.expovariate(1 / (4 + 20 * (1 - h)))))
        acct.value_day = acct.milestone_days.get(catalog.VALUE_EVENT)
        for m, d in acct.milestone_days.items():
            self.milestones.setdefault(d, []).append((acct.n, m))
        if acct.value_day is not None:
            self.value_day_idx[acct.n] = (acct.value_day - self.spec.start_date).days

    # ---------------------------------------------------------------- Stripe subscriptions

    def _price_object(self, price: catalog.Price) -> dict:
        """The price as a subscription item carries it: one dict per price, shared by every version (each
        version is serialized when it is stored, and nothing changes a price object)."""
        obj = self._price_objects.get(price.id)
        if obj is None:
            obj = self._price_objects[price.id] = price.to_stripe(self.t0)
        return obj

    def _sub_obj(self, s: Sub) -> dict:
        items = []
        for it in s.items:
            d = {"id": it.id, "object": "subscription_item", "billing_thresholds": None, "created": it.created,
                 "current_period_end": s.cpe, "current_period_start": s.cps,
                 # listed with expand[]=data.items.data.discounts: the discount objects, with their coupon
                 "discounts": _copied(it.discounts), "metadata": {},
                 "price": self._price_object(it.price), "subscription": s.id, "tax_rates": []}
            if not it.price.metered:
                d["quantity"] = it.quantity
            items.append(d)
        return {
            "id": s.id, "object": "subscription", "application": None, "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": s.created,
            "billing_mode": {"type": "classic"}, "billing_thresholds": None, "cancel_at": s.cancel_at,
            "cancel_at_period_end": s.cancel_at_period_end, "canceled_at": s.canceled_at,
            "cancellation_details": {"comment": None, "feedback": None,
                                     "reason": "cancellation_requested" if s.canceled_at else None},
            "collection_method": "charge_automatically", "created": s.created, "currency": s.currency,
            "current_period_end": s.cpe, "current_period_start": s.cps, "customer": s.customer_id,
            "days_until_due": None, "default_payment_method": None, "default_tax_rates": [], "description": None,
            "discounts": _copied(s.discounts), "ended_at": s.ended_at,
            "invoice_settings": {"issuer": {"type": "self"}},
            "items": {"object": "list", "data": items, "has_more": False, "total_count": len(items),
                      "url": f"/v1/subscription_items?subscription={s.id}"},
            "latest_invoice": s.latest_invoice, "livemode": False,
            "metadata": {"salesforce_account_id": s.account.sf_id} if s.account.sf_id else {},
            "pause_collection": None, "pending_update": None, "schedule": None, "start_date": s.created,
            "status": s.status, "test_clock": None, "trial_end": s.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": s.trial_start,
        }

    def _record(self, s: Sub, ts: int, event_type: str, previous: dict | None, obj: dict | None = None,
                same_second: bool = False) -> None:
        ts = self._event_ts(s, ts, same_second)
        s.last_event_ts = ts
        obj = obj or self._sub_obj(s)
        self.store.add("billing/subscriptions", s.id, ts, obj, sort_key=s.created)
        n = self._count("evt")
        if self.store.keeps("billing/events", ts):  # else older than any extract's events: not built
            # an event's object is never expanded (API 2025-03-31.basil): its discounts, and each item's,
            # are the discount ids; the list above has them expanded (expand[]=data.discounts,
            # data.items.data.discounts)
            data = {"object": _discount_ids(obj)}
            if previous is not None:
                data["previous_attributes"] = _discount_ids(previous)
            eid = self.ids.stripe("evt", n, 24)
            self.store.add("billing/events", eid, ts, {
                "id": eid, "object": "event", "api_version": "2025-03-31.basil", "created": ts, "data": data,
                "livemode": False, "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }, sort_key=ts)
        mrr = s.local_mrr()
        if not s.mrr_history or s.mrr_history[-1][1] != mrr:
            s.mrr_history.append((ts, mrr))

    @staticmethod
    def _event_ts(s: Sub, ts: int, same_second: bool) -> int:
        """The time of the subscription's next event: Stripe timestamps have one-second resolution, and one
        subscription's events go in distinct seconds, except where real accounts have two in one second
        (same_second: a creation and the activation that follows it at once), which the ledger orders by
        type."""
        return max(ts, s.last_event_ts + (0 if same_second else 1))

    def _update(self, s: Sub, ts: int, same_second: bool = False, **changes) -> None:
        """Apply changes and emit customer.subscription.updated with the old values of what changed."""
        # the state before only makes the event (its type and previous_attributes): not built for an event
        # older than any extract's (_record)
        evented = self.store.keeps("billing/events", self._event_ts(s, ts, same_second))
        before = self._sub_obj(s) if evented else None
        for k, v in changes.items():
            setattr(s, k, v)
        after = self._sub_obj(s)
        if not evented:
            self._record(s, ts, "", None, after, same_second=same_second)
            return
        previous = {k: before[k] for k in after if before[k] != after[k] and k not in ("latest_invoice",)}
        etype = "customer.subscription.deleted" if s.status == "canceled" and before["status"] != "canceled" \
            else "customer.subscription.updated"
        self._record(s, ts, etype, previous if etype.endswith("updated") else None, after, same_second=same_second)

    def _new_item(self, price: catalog.Price, qty: int | None, ts: int) -> Item:
        return Item(self.ids.stripe("si", self._count("si")), price, qty, ts)

    def _start_subscription(self, acct: Account, ts: int, trial: bool, first: bool, addon: bool = False) -> Sub:
        n = self._count("sub")
        tier = "addon" if addon else acct.tier
        ik = "month" if addon else acct.interval_key
        price = self.prices[(tier, acct.currency, ik)]
        qty = 1 if addon or not catalog.TIERS[tier]["per_seat"] else acct.seats
        if (tier, acct.currency, ik) == ("growth", "usd", "month") and self.shape_rnd.random() < 0.08:
            # a few are on a tiered or volume price, one in fractions of a cent, or seats in packs of five
            label = self.shape_rnd.choice(catalog.SPECIAL_PRICES)
            price = self.prices[(tier, acct.currency, ik, label)]
            self.edge(f"price_{label}", acct.sf_id or acct.customer_id)
        s = Sub(id=self.ids.stripe("sub", n, 24), n=n, account=acct, customer_id=acct.customer_id,
                currency=acct.currency, created=ts, interval_key=ik, items=[self._new_item(price, qty, ts)],
                is_addon=addon)
        if not addon and tier != "starter" and self.rnd.random() < 0.2:
            s.items.append(self._new_item(self.prices[("metered", acct.currency, "month")], None, ts))
            self.edge("metered_item", s.id)
        if first and not addon and self.rnd.random() < 0.25:
            code = self.rnd.choice(["WELCOME20", "WELCOME20", "LAUNCH25", "PARTNER10", "ONBOARD50", "LOYAL100"])
            c = catalog.COUPONS[code]
            if code == "LOYAL100" and (catalog.coupon_amount_off(code, acct.currency) is None or ik != "month"
                                       or s.list_mrr() < 20000):
                code, c = "PARTNER10", catalog.COUPONS["PARTNER10"]
            s.discounts = [self._discount(code, s, ts)]
            self.edge(f"discount_{c['duration']}", s.id)
            if self.shape_rnd.random() < 0.1:
                # a few subscriptions carry a second, stacked discount (a partner rate on top of a promotion)
                second = "LAUNCH25" if code == "PARTNER10" else "PARTNER10"
                s.discounts.append(self._discount(second, s, ts))
                self.edge("stacked_discounts", s.id)
        if not addon and self.item_discount_rnd.random() < 0.03:
            # a few have a discount on the plan item itself (items.data[].discounts), some on top of the
            # subscription's: forever, repeating, once, or an amount_off with amounts in other currencies
            code = self.item_discount_rnd.choice(["PARTNER10", "LAUNCH25", "ONBOARD50", "LOYAL100"])
            if code == "LOYAL100" and (catalog.coupon_amount_off(code, acct.currency) is None or ik != "month"
                                       or s.list_mrr() < 20000):
                code = "PARTNER10"
            s.main_item.discounts = [self._discount(code, s, ts, item=s.main_item)]
            self.edge(f"item_discount_{catalog.COUPONS[code]['duration']}", s.id)
        acct.subs.append(s)
        if addon:
            self.edge("several_subscriptions_on_one_account", acct.sf_id or acct.customer_id)
        if trial:
            s.status, s.trial_start, s.trial_end = "trialing", ts, ts + 14 * 86400
            s.cps, s.cpe = ts, s.trial_end
            self.schedule(s.trial_end, "trial_end", s)
        else:
            s.cps, s.cpe = ts, add_months(ts, s.months)
            self.schedule(s.cpe, "renewal", s)
        if s.interval_key != "month":
            self.edge(f"{s.interval_key}ly_plan" if s.interval_key == "quarter" else "annual_plan", s.id)
        if day_of(ts).day not in (1,):
            self.edge("mid_month_start", s.id)
        for end in sorted({d["end"] for d in s.discounts + s.main_item.discounts if d["end"]}):
            self.schedule(end, "discount_end", s)
        if acct.sf_id:
            self.alive[acct.n] = True
        if not trial and self.shape_rnd.random() < 0.03:
            # created incomplete (payment_behavior=default_incomplete) and activated in the same second
            # when its first payment succeeds: two events with one timestamp
            s.status = "incomplete"
            self._record(s, ts, "customer.subscription.created", None)
            self._update(s, ts, same_second=True, status="active")
            self.edge("same_second_events", s.id)
        else:
            self._record(s, ts, "customer.subscription.created", None)
        self._invoice(s, ts, "subscription_create", s.cps, s.cpe, trial=trial)
        if not trial:
            self._schedule_review(acct, ts)
        return s

    def _discount(self, code: str, s: Sub, ts: int, item: Item | None = None) -> dict:
        c = catalog.coupon_objects(self.t0)
        coupon = next(x for x in c if x["id"] == code)
        end = add_months(ts, coupon["duration_in_months"]) if coupon["duration"] == "repeating" else None
        return {"id": self.ids.stripe("di", self._count("di")), "object": "discount", "checkout_session": None,
                "coupon": coupon, "customer": s.customer_id, "end": end, "invoice": None, "invoice_item": None,
                "promotion_code": None, "start": ts, "subscription": s.id,
                "subscription_item": item.id if item is not None else None}

    def _on_trial_end(self, ts: int, s: Sub) -> None:
        if s.ended_at is not None:
            return
        h = float(self.h[s.account.n]) if s.account.sf_id else 0.7
        if self.rnd.random() < 0.35 + 0.6 * h:
            self.edge("trial_converts", s.id)
            self._update(s, ts, status="active", cps=ts, cpe=add_months(ts, s.months))
            self.schedule(s.cpe, "renewal", s)
            self._invoice(s, ts, "subscription_cycle", s.cps, s.cpe)
            self._schedule_review(s.account, ts)
        else:
            self.edge("trial_lapses", s.id)
            self._end(s, ts, canceled_at=ts)

    def _on_discount_end(self, ts: int, s: Sub) -> None:
        if s.ended_at is not None:
            return
        # as Stripe, removes a repeating discount at its end: the subscription's, or an item's own
        items_end = any(d["end"] == ts for it in s.items for d in it.discounts)
        if items_end:
            self.edge("item_discount_expires", s.id)
            items = [replace(it, discounts=[d for d in it.discounts if d["end"] != ts]) for it in s.items]
            if any(d["end"] == ts for d in s.discounts):
                self.edge("discount_expires", s.id)
            self._update(s, ts, items=items, discounts=[d for d in s.discounts if d["end"] != ts])
        elif any(d["end"] == ts for d in s.discounts):
            self.edge("discount_expires", s.id)
            self._update(s, ts, discounts=[d for d in s.discounts if d["end"] != ts])

    def _on_renewal(self, ts: int, s: Sub) -> None:
        if s.ended_at is not None or ts != s.cpe:
            return
        if s.cancel_at_period_end or (s.cancel_at is not None and s.cancel_at <= ts):
            self.edge("cancel_at_period_end" if s.cancel_at_period_end else "cancel_at_scheduled", s.id)
            self._end(s, ts)
            return
        cps, cpe = ts, add_months(ts, s.months)
        # as in Stripe, the roll-over to a new period is itself a customer.subscription.updated
        self._update(s, ts, cps=cps, cpe=cpe)
        self.schedule(cpe, "renewal", s)
        inv = self._invoice(s, ts, "subscription_cycle", cps, cpe)
        if s.status == "past_due":
            if inv["status"] == "paid":
                # as in Stripe, past_due means the latest finalized invoice is unpaid: a renewal invoice that
                # is paid (here 0.00, a credit covered it) makes the subscription active again, although the
                # older failed invoice stays open (its retries go on)
                self.edge("past_due_ended_by_paid_renewal", s.id)
                self._end_spell(s, inv["status_transitions"]["paid_at"])
            return
        h = float(self.h[s.account.n]) if s.account.sf_id else 0.8
        if self.rnd.random() < 0.01 + 0.08 * (1 - h) ** 2 and inv["amount_due"] > 0:
            self._fail_payment(s, inv, ts, h)

    def _fail_payment(self, s: Sub, inv: dict, ts: int, h: float) -> None:
        inv.update(status="open", amount_paid=0, amount_remaining=inv["amount_due"], attempt_count=1,
                   status_transitions=dict(inv["status_transitions"], paid_at=None))
        self._emit_invoice(inv, ts + 600, "invoice.payment_failed")
        s.past_due_spells.append([ts + 600, None])
        self._update(s, ts + 600, status="past_due")
        self.edge("past_due", s.id)
        if self.rnd.random() < 0.55 + 0.35 * h:
            self.schedule(ts + 86400 * self.rnd.randint(1, 20), "recover", s, inv)
        else:
            self.schedule(ts + 86400 * self.rnd.randint(35, 45), "delinquent_cancel", s, inv)

    def _end_spell(self, s: Sub, ts: int) -> None:
        """The past-due spell ends (an invoice was paid): the subscription is active again."""
        if s.status == "past_due":
            s.past_due_spells[-1][1] = ts
            self._update(s, ts, status="active")

    def _on_recover(self, ts: int, s: Sub, inv: dict) -> None:
        # the failed invoice is paid on a retry (the subscription may already be active again, when a
        # later invoice was paid first)
        if s.ended_at is not None or inv["status"] != "open":
            return
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0, attempt_count=2,
                   status_transitions=dict(inv["status_transitions"], paid_at=ts))
        self._emit_invoice(inv, ts, "invoice.paid")
        self._end_spell(s, ts)

    def _on_delinquent_cancel(self, ts: int, s: Sub, inv: dict) -> None:
        # the failed invoice's retries ran out: it is marked uncollectible and the subscription cancelled
        # (the dunning setting "cancel the subscription"), even when a later paid invoice had made it
        # active again
        if s.ended_at is not None or inv["status"] != "open":
            return
        self.edge("delinquent_churn", s.id)
        inv.update(status="uncollectible", status_transitions=dict(inv["status_transitions"],
                                                                   marked_uncollectible_at=ts))
        self._emit_invoice(inv, ts, None)
        self._end(s, ts, canceled_at=ts)

    def _end(self, s: Sub, ts: int, canceled_at: int | None = None) -> None:
        if s.past_due_spells and s.past_due_spells[-1][1] is None:
            s.past_due_spells[-1][1] = ts
        self._update(s, ts, status="canceled", ended_at=ts,
                     canceled_at=s.canceled_at if canceled_at is None else canceled_at)
        acct = s.account
        if not acct.active_subs():
            if acct.n < len(self.alive):
                self.alive[acct.n] = False
            acct.churned_at = ts
            # some churned customers come back after months away
            h = float(self.h[acct.n]) if acct.sf_id else 0.5
            if acct.sf_id and s.status == "canceled" and s.trial_end != ts and self.rnd.random() < 0.12 + 0.1 * h:
                self.schedule(ts + 86400 * self.rnd.randint(60, 330), "reactivate", acct)

    def _on_reactivate(self, ts: int, acct: Account) -> None:
        if acct.active_subs():
            return
        self.mu[acct.n] = self.h[acct.n] = self.rnd.uniform(0.5, 0.85)
        self.champion_engaged[acct.n] = True
        self.edge("reactivation", acct.sf_id)
        self._start_subscription(acct, ts, trial=False, first=False)

    # monthly account review: churn, contraction, expansion, sentiment, ownership

    def _schedule_review(self, acct: Account, ts: int) -> None:
        self.schedule(ts + 86400 * self.rnd.randint(25, 35), "review", acct)

    def _on_review(self, ts: int, acct: Account) -> None:
        subs = [s for s in acct.active_subs() if s.status in ("active", "past_due")]
        if not subs:
            return
        self._schedule_review(acct, ts)
        if acct.sf_id is None:
            if self.rnd.random() < 0.02:
                self._cancel(subs[0], ts)
            return
        h = float(self.h[acct.n])
        main = next((s for s in subs if not s.is_addon), None)
        if main is None:
            # only an add-on is left: it can still be cancelled, but not resized or upgraded
            if self.rnd.random() < 0.1:
                self._cancel(subs[0], ts)
            self._review_crm(acct, ts, h)
            return
        # monthly odds: churn and contraction rise steeply as health falls, expansion rises with it
        p_churn = 0.003 + 0.12 * (1 - h) ** 2.5
        p_contract = 0.005 + 0.12 * (1 - h) ** 2
        p_expand = 0.06 * h ** 2
        r = self.rnd.random()
        if main.cancel_at_period_end or main.cancel_at:
            pass
        elif r < p_churn:
            self._cancel(main, ts)
        elif r < p_churn + p_contract:
            self._contract(acct, main, subs, ts)
        elif r < p_churn + p_contract + p_expand:
            self._expand(acct, main, subs, ts)
        self._review_crm(acct, ts, h)
        if main.interval_key != "month" and not main.cancel_at_period_end:
            days_left = (main.cpe - ts) / 86400
            if 60 <= days_left < 95:
                close = day_of(main.cpe)
                won = h > 0.35
                self._opportunity(acct, ts, "Renewal", "Negotiation/Review", close, float(main.list_mrr()) * main.months / 100)
                self.schedule(main.cpe - 3600, "close_renewal", acct, close, won, float(main.list_mrr()) * main.months / 100)

    def _on_close_renewal(self, ts: int, acct: Account, close: dt.date, won: bool, amount: float) -> None:
        self._opportunity(acct, ts, "Renewal", "Closed Won" if won else "Closed Lost", close, amount)

    def _cancel(self, s: Sub, ts: int) -> None:
        mode = self.rnd.random()
        if s.status == "past_due" or mode < 0.25:
            self.edge("cancel_immediately", s.id)
            self._end(s, ts, canceled_at=ts)
        elif mode < 0.8:
            self._update(s, ts, cancel_at_period_end=True, canceled_at=ts)
        else:
            # scheduled cancellation at a future date: the customer keeps service until then
            self._update(s, ts, cancel_at=s.cpe, canceled_at=ts)

    def _contract(self, acct: Account, main: Sub, subs: list[Sub], ts: int) -> None:
        addon = next((s for s in subs if s.is_addon), None)
        if addon and self.rnd.random() < 0.5:
            self.edge("subscription_ends_while_other_continues", addon.id)
            self._end(addon, ts, canceled_at=ts)
            return
        it = main.main_item
        if catalog.TIERS.get(it.price.tier, {}).get("per_seat") and (it.quantity or 0) > 2:
            q = max(1, int(it.quantity * self.rnd.uniform(0.5, 0.9)))
            self.edge("seat_decrease", main.id)
            self._change_item(main, ts, quantity=q)
        elif it.price.tier in ("enterprise", "growth"):
            down = catalog.TIER_ORDER[catalog.TIER_ORDER.index(it.price.tier) - 1]
            self.edge("downgrade", main.id)
            self._change_item(main, ts, tier=down)

    def _expand(self, acct: Account, main: Sub, subs: list[Sub], ts: int) -> None:
        r = self.rnd.random()
        it = main.main_item
        if r < 0.2 and not any(s.is_addon for s in subs):
            self._start_subscription(acct, ts, trial=False, first=False, addon=True)
        elif r < 0.35 and it.price.tier != "enterprise":
            up = catalog.TIER_ORDER[catalog.TIER_ORDER.index(it.price.tier) + 1]
            self.edge("upgrade", main.id)
            self._change_item(main, ts, tier=up)
        elif catalog.TIERS.get(it.price.tier, {}).get("per_seat"):
            q = int(it.quantity * self.rnd.uniform(1.1, 1.5)) + 1
            self.edge("seat_increase", main.id)
            self._change_item(main, ts, quantity=q)
            self._opportunity(acct, ts, "Expansion", "Closed Won", day_of(ts),
                              float(it.price.amount(q) - it.price.amount(it.quantity)) / 100)
        else:
            self._change_item(main, ts, tier="growth")

    def _change_item(self, s: Sub, ts: int, quantity: int | None = None, tier: str | None = None) -> None:
        it = s.main_item
        old_mrr = s.list_mrr()
        if tier is not None:
            price = self.prices[(tier, s.currency, s.interval_key)]
            qty = it.quantity if catalog.TIERS[tier]["per_seat"] else 1
            if catalog.TIERS[tier]["per_seat"] and not catalog.TIERS[it.price.tier]["per_seat"]:
                qty = max(2, s.account.seats)
            new_items = [self._new_item(price, qty, ts)] + s.items[1:]
            s.account.tier = tier
            if s.account.sf_id:
                self.avail[s.account.n] = catalog.PLAN_FEATURES[tier]
        else:
            # the same item, with its own discounts; a new plan is a new item, without them
            new_items = [Item(it.id, it.price, quantity, it.created, list(it.discounts))] + s.items[1:]
        if day_of(ts).day not in (1,):
            self.edge("mid_month_change", s.id)
        self._update(s, ts, items=new_items)
        if s.main_item.quantity:
            s.account.seats = s.main_item.quantity
            if s.account.sf_id:
                self.seats[s.account.n] = s.account.seats
        new_mrr = s.list_mrr()
        if s.cpe <= ts or s.status not in ("active", "past_due"):
            return
        # as in Stripe, a change mid-period makes two proration lines for the rest of the period: a credit
        # for the unused time on the old item and a charge for the remaining time on the new one
        # (each net of the discounts, as Stripe prorates: _net_of_discounts), and the credit names the line that
        # charged the old item, when that charge was on an invoice (the line's proration_details.credited_items)
        frac = Fraction(s.cpe - ts, max(s.cpe - s.cps, 1))
        old_qty = it.quantity or 0
        new_it = s.main_item
        old_items = [it] + s.items[1:]
        pair = [(it, -round(_net_of_discounts(old_items, it, s.discounts, s.currency) * frac), old_qty, True,
                 s.debits.get(it.id)),
                (new_it, round(_net_of_discounts(s.items, new_it, s.discounts, s.currency) * frac),
                 new_it.quantity or 0, False, None)]
        # as in Stripe, each proration is an invoice item (ii_) made at the change, pending until invoiced
        lines = [(i, a, q, ts, s.cpe, self._invoice_item(s, i, a, q, ts, s.cpe, credit), credit, credited)
                 for i, a, q, credit, credited in pair]
        if new_mrr > old_mrr and s.status == "active":
            # charge an upgrade straight away (proration_behavior=always_invoice)
            self._invoice(s, ts, "subscription_update", ts, s.cpe, prorations=lines)
        else:
            # a downgrade is credited on the next invoice (proration_behavior=create_prorations); until
            # then its items are pending (GET /v1/invoiceitems?pending=true)
            for line in lines:
                self.store.add("billing/invoiceitems", line[5]["id"], ts, line[5], sort_key=line[5]["date"])
            s.pending_lines.extend(lines)
            s.debits[new_it.id] = None  # charged by an invoice item on no invoice yet

    def _review_crm(self, acct: Account, ts: int, h: float) -> None:
        noisy = h + self.rnd.gauss(0, 0.12)
        sentiment = "Green" if noisy > 0.62 else "Yellow" if noisy > 0.4 else "Red"
        changes = {}
        if (acct.segment != "SMB" or self.rnd.random() < 0.5) and sentiment != acct.sentiment:
            acct.sentiment = sentiment
            changes["CSM_Sentiment__c"] = sentiment
        if self.rnd.random() < 0.02:
            acct.csm_id = self.rnd.choice(self.csms)
            changes["CSM__c"] = acct.csm_id
            self.edge("csm_reassigned", acct.sf_id)
        if self.owner_rnd.random() < 0.02 and len(self.aes) > 1:
            # the account moves to another account executive (a territory change)
            acct.owner_id = self.owner_rnd.choice([a for a in self.aes if a != acct.owner_id])
            changes["OwnerId"] = acct.owner_id
            self.edge("owner_reassigned", acct.sf_id)
        if acct.segment == "SMB" and acct.seats > 40:
            acct.segment = "Mid-Market"
            changes["Segment__c"] = acct.segment
            self.edge("segment_change", acct.sf_id)
        if changes:
            self._emit_account(acct, ts, **changes)

    # ---------------------------------------------------------------- invoices

    def _invoice(self, s: Sub, ts: int, reason: str, ps: int, pe: int, trial: bool = False,
                 prorations: list[tuple] | None = None) -> dict:
        n = self._count("inv")
        iid = self.ids.stripe("in", n, 24)
        lines = []
        if reason in ("subscription_cycle", "subscription_update") and s.pending_lines:
            # pending proration lines from an earlier change are billed with the subscription's next invoice
            for it, amount, qty, lps, lpe, item, credit, credited in s.pending_lines:
                lines.append(self._line(s, iid, it, amount, lps, lpe, True, qty=qty, invoice_item=item,
                                        credit=credit, credited=credited))
                self._invoiced(item, iid, ts)
            s.pending_lines = []
        if prorations is not None:
            for it, amount, qty, lps, lpe, item, credit, credited in prorations:
                lines.append(self._line(s, iid, it, amount, lps, lpe, True, qty=qty, invoice_item=item,
                                        credit=credit, credited=credited))
                self._invoiced(item, iid, ts)
        else:
            for it in s.items:
                if it.price.metered:
                    if reason == "subscription_cycle" and not trial:
                        usage = int(self.rnd.expovariate(1 / 4000))
                        lines.append(self._line(s, iid, it, usage * it.price.unit_amount,
                                                add_months(ps, -1), ps, False, qty=usage))
                    continue
                amount = 0 if trial else round(it.price.amount(it.quantity))
                lines.append(self._line(s, iid, it, amount, ps, pe, False, own_discounts=it.discounts))
        for li in lines:
            if not li["_metered"] and not li["_credit"]:
                # the latest charge of the item for this period: what a later credit for it credits
                s.debits[li["parent"]["subscription_item_details"]["subscription_item"]] = (iid, li["id"])
        subtotal = sum(li["amount"] for li in lines)
        # the discounts apply to the period's licensed lines (not to metered usage, nor to prorations, whose
        # amounts are net of them already: _net_of_discounts): first each line's own (its item's), then the
        # subscription's, in order, each to what the ones before it left
        base = [li for li in lines if not li.get("_metered") and not li["_proration"]]
        recurring = sum(li["amount"] for li in base)
        applied_discounts: list[tuple[dict, int]] = []
        item_discount = 0
        for li in base:
            left_on_line = li["amount"]
            for d in li.pop("_own_discounts"):
                c = d["coupon"]
                if c["duration"] == "once" and reason != "subscription_create":
                    continue
                if c["percent_off"] is not None:
                    amount = round(left_on_line * c["percent_off"] / 100)
                elif (off := catalog.coupon_amount_off(c["id"], s.currency)) is not None:
                    amount = min(left_on_line, off)
                else:
                    continue
                # listed with expand[]=data.lines.data.discounts: the line's own discounts, as objects
                li["discounts"].append(copy.deepcopy(d))
                if amount:
                    li["discount_amounts"].append({"amount": amount, "discount": d["id"]})
                    left_on_line -= amount
                    item_discount += amount
        remaining = recurring - item_discount
        if prorations is None:
            for d in s.discounts:
                c = d["coupon"]
                if c["duration"] == "once" and reason != "subscription_create":
                    continue
                if c["percent_off"] is not None:
                    amount = round(remaining * c["percent_off"] / 100)
                elif (off := catalog.coupon_amount_off(c["id"], s.currency)) is not None:
                    amount = min(remaining, off)
                else:
                    continue
                if amount:
                    applied_discounts.append((d, amount))
                    remaining -= amount
        discount = recurring - remaining
        for d, amount in applied_discounts:
            left = amount
            for i, li in enumerate(base):
                # Stripe reports each line's share of each discount in discount_amounts (the line's
                # discounts list only its own: the subscription's are the invoice's discounts)
                share = left if i == len(base) - 1 else min(left, round(amount * li["amount"] / max(1, recurring)))
                left -= share
                li["discount_amounts"].append({"amount": share, "discount": d["id"]})
        for li in lines:
            li.pop("_metered", None)
            li.pop("_proration", None)
            li.pop("_own_discounts", None)
            li.pop("_credit", None)
        total = subtotal - discount
        # as in Stripe, a negative total (a credit larger than the charges) is never collected: it goes
        # to the customer's credit balance, which later invoices use up before charging
        starting = -s.credit_balance
        applied = min(s.credit_balance, max(total, 0))
        s.credit_balance = s.credit_balance - applied + max(-total, 0)
        due = max(total, 0) - applied
        paid = due == 0 or s.status != "past_due"
        inv = {
            "id": iid, "object": "invoice", "account_country": "US", "account_name": "SimSaaS Inc.",
            "amount_due": due, "amount_paid": due if paid else 0, "amount_remaining": 0 if paid else due,
            "starting_balance": starting,
            "attempt_count": 1, "attempted": True, "auto_advance": False, "billing_reason": reason,
            "collection_method": "charge_automatically", "created": ts, "currency": s.currency,
            "customer": s.customer_id, "customer_email": None, "customer_name": s.account.name,
            "description": None, "due_date": None,
            # discounts as listed with expand[]=data.discounts: the discount objects, with their coupon
            "discounts": [copy.deepcopy(d) for d, _ in applied_discounts],
            "effective_at": ts, "ending_balance": -s.credit_balance,
            "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                      "url": f"/v1/invoices/{iid}/lines"},
            "livemode": False, "metadata": {}, "number": f"{s.customer_id[4:12].upper()}-{n:04d}",
            "parent": {"quote_details": None, "subscription_details": {"metadata": {}, "subscription": s.id},
                       "type": "subscription_details"},
            "period_end": pe, "period_start": ps, "status": "paid" if paid else "open",
            "status_transitions": {"finalized_at": ts, "marked_uncollectible_at": None,
                                   "paid_at": ts + 300 if paid else None, "voided_at": None},
            "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": total,
            "total_discount_amounts": [
                *({"amount": a["amount"], "discount": a["discount"]} for li in base for a in li["discount_amounts"]
                  if a["discount"] not in {d["id"] for d, _ in applied_discounts}),
                *({"amount": a, "discount": d["id"]} for d, a in applied_discounts)],
            "total_excluding_tax": total, "webhooks_delivered_at": ts,
        }
        s.latest_invoice = iid
        self._emit_invoice(inv, ts + 300, "invoice.paid" if paid and total > 0 else None)
        return inv

    def _invoice_item(self, s: Sub, it: Item, amount: int, qty: int, ps: int, pe: int, credit: bool) -> dict:
        """A proration invoice item as GET /v1/invoiceitems lists it (API 2025-03-31.basil), not yet invoiced:
        ``amount`` net of the subscription's discounts (_net_of_discounts), never discountable itself. A credit
        says so only by its amount (negative, or 0 when a discount took all of it) and its description ("Unused
        time on ..." where a charge has "Remaining time on ..."): an invoice item has no ``proration_details``
        in this API version (2025-09-30.clover added it, with ``discount_amounts`` only; its
        ``credited_items`` came in 2026-05-27.dahlia for flexible billing mode and in 2026-09-30.endive for
        classic billing mode)."""
        unit = Fraction(amount, qty) if qty else Fraction(amount)
        unit_text = str(unit.numerator) if unit.denominator == 1 else f"{float(unit):.12f}".rstrip("0")
        return {
            "id": self.ids.stripe("ii", self._count("ii"), 24), "object": "invoiceitem", "amount": amount,
            "currency": s.currency, "customer": s.customer_id, "date": ps,
            "description": f"{'Unused' if credit else 'Remaining'} time on {qty} × {it.price.tier.title()} "
                           f"({it.price.interval_key}) after {dt.datetime.fromtimestamp(ps, dt.UTC):%d %b %Y}",
            "discountable": False, "discounts": [], "invoice": None, "livemode": False, "metadata": {},
            "parent": {"type": "subscription_details",
                       "subscription_details": {"subscription": s.id, "subscription_item": it.id}},
            "period": {"end": pe, "start": ps},
            "pricing": {"type": "price_details", "price_details": {"price": it.price.id, "product": it.price.product},
                        "unit_amount_decimal": unit_text},
            "proration": True, "quantity": qty, "tax_rates": [], "test_clock": None,
        }

    def _invoiced(self, item: dict, iid: str, ts: int) -> None:
        # the invoice item is on an invoice now: listed with its invoice from here on
        item["invoice"] = iid
        self.store.add("billing/invoiceitems", item["id"], ts, item, sort_key=item["date"])

    def _line(self, s: Sub, iid: str, it: Item, amount: int, ps: int, pe: int, proration: bool, qty=None,
              invoice_item: dict | None = None, own_discounts: list[dict] | None = None, credit: bool = False,
              credited: tuple[str, str] | None = None) -> dict:
        """An invoice line (API 2025-03-31.basil). A proration's (``invoice_item``: the invoice item it bills)
        has the invoice item's amount and description, is not discountable, lists the subscription's discounts
        that its amount is net of at amount 0 in ``discount_amounts`` (_net_of_discounts), and a credit names
        the line that charged what it credits (``credited``: invoice, line) in
        ``proration_details.credited_items`` ("for a credit proration line_item, the original debit
        line_items to which the credit proration applies"; null on every other line, as in Stripe's own
        webhook payloads, and on a credit whose charge was still a pending invoice item when it was made)."""
        return {
            "id": self.ids.stripe("il", self._count("il"), 24), "object": "line_item", "amount": amount,
            "currency": s.currency,
            "description": invoice_item["description"] if invoice_item
            else f"{it.price.tier.title()} ({it.price.interval_key})",
            "discount_amounts": [{"amount": 0, "discount": d["id"]} for d in s.discounts
                                 if _lowers_mrr(d, s.currency)] if proration else [],
            "discountable": not proration, "discounts": [], "invoice": iid, "livemode": False,
            "metadata": {},
            "parent": {"invoice_item_details": None, "type": "subscription_item_details",
                       "subscription_item_details": {
                           "invoice_item": invoice_item and invoice_item["id"], "proration": proration,
                           "proration_details": {"credited_items": credited and {
                               "invoice": credited[0], "invoice_line_items": [credited[1]]}},
                           "subscription": s.id, "subscription_item": it.id}},
            "period": {"end": pe, "start": ps},
            "pricing": {"type": "price_details", "price_details": {"price": it.price.id, "product": it.price.product},
                        # null for a tiered price (Stripe prices each tier; the amount says the total)
                        "unit_amount_decimal": (it.price.unit_amount_decimal if it.price.unit_amount_decimal
                                                else None if it.price.unit_amount is None
                                                else str(it.price.unit_amount))},
            "quantity": qty if qty is not None else it.quantity, "subtotal": amount, "taxes": [],
            "_metered": it.price.metered, "_proration": proration, "_own_discounts": own_discounts or [],
            "_credit": credit,
        }

    def _emit_invoice(self, inv: dict, ts: int, event_type: str | None) -> None:
        self.store.add("billing/invoices", inv["id"], ts, inv, sort_key=inv["created"])
        if event_type:
            n = self._count("evt")
            if self.store.keeps("billing/events", ts):  # else older than any extract's events: not built
                eid = self.ids.stripe("evt", n, 24)
                self.store.add("billing/events", eid, ts, {
                    "id": eid, "object": "event", "api_version": "2025-03-31.basil", "created": ts,
                    "data": {"object": _invoice_discount_ids(inv)}, "livemode": False, "pending_webhooks": 0,
                    "request": {"id": None, "idempotency_key": None}, "type": event_type,
                }, sort_key=ts)

    # ---------------------------------------------------------------- support and NPS

    def _support(self, day: dt.date) -> None:
        lo, _ = day_bounds(day)
        live = np.nonzero(self.alive & self.arrived)[0]
        if len(live):
            h = self.h[live]
            seats = self.seats[live]
            lam = 0.004 * (1 + np.log1p(seats)) * (1 + 5 * (1 - h) ** 2)
            counts = self.rng.poisson(lam)
            for i, c in zip(live[counts > 0], counts[counts > 0]):
                for _ in range(int(c)):
                    self._new_ticket(self.accounts[i], self.org_ids[int(i)], lo, float(self.h[i]))
        # a few organizations in Zendesk match no CRM account
        if len(self.unmatched_orgs) < self.spec.unmatched_organizations and self.rnd.random() < 0.01:
            org = 370_000_000_000 + len(self.unmatched_orgs)
            self.unmatched_orgs.append(org)
            self.store.add("support/organizations", str(org), lo + 3600,
                           self._org(org, f"Unknown Org {len(self.unmatched_orgs)}", None, lo + 3600))
            self.edge("support_org_without_crm_account", str(org))
        for org in self.unmatched_orgs:
            if self.rnd.random() < 0.05:
                self._new_ticket(None, org, lo, 0.6)

    def _new_ticket(self, acct: Account | None, org: int, lo: int, h: float) -> None:
        tid = self.next_ticket
        self.next_ticket += 1
        created = lo + self.rnd.randint(7 * 3600, 20 * 3600)
        r = self.rnd.random()
        prio = "urgent" if r < 0.03 + 0.08 * (1 - h) else "high" if r < 0.2 + 0.1 * (1 - h) else \
            "normal" if r < 0.85 else "low" if r < 0.95 else None
        requester = 90_000_000_000 + (acct.n if acct else org % 1000) * 10 + self.rnd.randint(0, 5)
        at = zd_datetime(created)
        t = {
            "url": f"https://simsaas.zendesk.com/api/v2/tickets/{tid}.json", "id": tid, "external_id": None,
            "via": {"channel": self.rnd.choice(["email", "web", "api", "chat"]), "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": at, "updated_at": at,
            "type": self.rnd.choice(["problem", "incident", "question", "task", None]),
            "subject": self.rnd.choice(["Cannot export report", "SSO login fails", "Billing question",
                                        "Dashboard slow", "Integration error", "How do I share a dashboard?"]),
            "raw_subject": None, "description": "Simulated ticket.", "priority": prio, "status": "open",
            "recipient": None, "requester_id": requester, "submitter_id": requester,
            "assignee_id": 80_000_000_000 + self.rnd.randint(1, 12), "organization_id": org,
            "group_id": 20_001_662, "collaborator_ids": [], "problem_id": None, "has_incidents": False,
            "due_at": None, "tags": [prio or "normal", "simulated"], "custom_fields": [],
            "satisfaction_rating": {"score": "unoffered"}, "ticket_form_id": None, "brand_id": 5446,
        }
        t["raw_subject"] = t["subject"]
        first_reply = int(self.rnd.lognormvariate(4.0 + 1.2 * (1 - h), 0.8))
        resolution = first_reply + int(self.rnd.lognormvariate(6.5 + 1.0 * (1 - h), 1.0))
        reopens = 1 if self.rnd.random() < 0.08 + 0.12 * (1 - h) else 0
        replies = 1 + (self.rnd.random() < 0.5) + reopens + int(self.rnd.random() < 0.3 * (1 - h)) * 2
        m = {
            "url": f"https://simsaas.zendesk.com/api/v2/ticket_metrics/{tid + 5_000_000}.json",
            "id": tid + 5_000_000, "ticket_id": tid, "created_at": at,
            "updated_at": at, "group_stations": 1, "assignee_stations": 1, "reopens": 0,
            "replies": 0, "assignee_updated_at": None, "requester_updated_at": at,
            "status_updated_at": at, "initially_assigned_at": at,
            "assigned_at": at, "solved_at": None,
            "latest_comment_added_at": at,
            "reply_time_in_minutes": {"calendar": None, "business": None},
            "first_resolution_time_in_minutes": {"calendar": None, "business": None},
            "full_resolution_time_in_minutes": {"calendar": None, "business": None},
            "agent_wait_time_in_minutes": {"calendar": None, "business": None},
            "requester_wait_time_in_minutes": {"calendar": None, "business": None},
            "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
        }
        # each version below is superseded by a later one that this call or the agenda adds for sure (the
        # solve, then the close): the store drops those that fall in the same extract window (store.py)
        solved_at = self._runs_at(created + resolution * 60)
        replied_at = created + first_reply * 60
        self.store.add("support/tickets", str(tid), created, t, superseded_at=solved_at)
        self.store.add("support/ticket_metrics", str(tid + 5_000_000), created, m, superseded_at=replied_at)
        # the reply comes later the same day or so: the metrics row is updated then
        m2 = dict(m, replies=1, updated_at=zd_datetime(replied_at),
                  reply_time_in_minutes={"calendar": first_reply, "business": int(first_reply * 0.7)})
        self.store.add("support/ticket_metrics", str(m["id"]), replied_at, m2, superseded_at=solved_at)
        self.schedule(created + resolution * 60, "solve_ticket", t, m2, resolution, reopens, replies, h)

    def _on_solve_ticket(self, ts, t, m, resolution, reopens, replies, h) -> None:
        at = zd_datetime(ts)
        t = dict(t, status="solved", updated_at=at)
        m = dict(m, solved_at=at, updated_at=at, reopens=reopens, replies=replies,
                 full_resolution_time_in_minutes={"calendar": resolution, "business": int(resolution * 0.6)},
                 first_resolution_time_in_minutes={"calendar": resolution, "business": int(resolution * 0.6)},
                 status_updated_at=at)
        closed_at = self._runs_at(ts + 4 * 86400)
        offered = self.rnd.random() < 0.7
        if offered:
            rid = self.next_rating
            self.next_rating += 1
            t["satisfaction_rating"] = {"score": "offered"}
            rating = {"url": f"https://simsaas.zendesk.com/api/v2/satisfaction_ratings/{rid}.json", "id": rid,
                      "assignee_id": t["assignee_id"], "group_id": t["group_id"], "requester_id": t["requester_id"],
                      "ticket_id": t["id"], "score": "offered", "created_at": at,
                      "updated_at": at, "comment": None, "reason": None}
            rated_at = None
            if self.rnd.random() < 0.45:
                good = self.rnd.random() < 0.3 + 0.65 * h
                rate_ts = ts + self.rnd.randint(3600, 3 * 86400)
                self.schedule(rate_ts, "rate_ticket", t, rating, good, closed_at)
                rated_at = self._runs_at(rate_ts)
            self.store.add("support/satisfaction_ratings", str(rid), ts, rating, superseded_at=rated_at)
        self.store.add("support/tickets", str(t["id"]), ts, t, superseded_at=closed_at)
        self.store.add("support/ticket_metrics", str(m["id"]), ts, m)
        self.schedule(ts + 4 * 86400, "close_ticket", t)

    def _on_rate_ticket(self, ts, t, rating, good, closed_at) -> None:
        score = "good" if good else "bad"
        rating = dict(rating, score=score, updated_at=zd_datetime(ts),
                      comment="Thanks, quick help!" if good else "Took too long.")
        self.store.add("support/satisfaction_ratings", str(rating["id"]), ts, rating)
        given = {"id": rating["id"], "score": score, "comment": rating["comment"]}
        self.rated_tickets[t["id"]] = given
        t = dict(t, updated_at=zd_datetime(ts), satisfaction_rating=given)
        self.store.add("support/tickets", str(t["id"]), ts, t, superseded_at=closed_at)

    def _on_close_ticket(self, ts, t) -> None:
        # ``t`` is the ticket as solved; a rating given since then stays on the closed ticket
        closed = dict(t, status="closed", updated_at=zd_datetime(ts))
        if (given := self.rated_tickets.pop(t["id"], None)) is not None:
            closed["satisfaction_rating"] = given
        self.store.add("support/tickets", str(t["id"]), ts, closed)

    def _nps(self, day: dt.date) -> None:
        lo, _ = day_bounds(day)
        live = np.nonzero(self.alive & self.arrived)[0]
        if not len(live):
            return
        hits = live[self.rng.random(len(live)) < 1 / 60]
        for i in hits:
            acct = self.accounts[int(i)]
            if self.rnd.random() > 0.6:
                continue
            contact = self.rnd.choice(acct.contacts)
            h = float(self.h[i])
            score = int(min(10, max(0, round(1.5 + 9 * h + self.rnd.gauss(0, 1.6)))))
            rid = self.next_nps
            self.next_nps += 1
            ts = lo + self.rnd.randint(8 * 3600, 20 * 3600)
            person = str(70_000_000 + int(contact["Id"][-6:], 36) % 10_000_000)
            self.store.add("nps/survey_responses", str(rid), ts, {
                "id": str(rid), "person": person, "survey_type": "nps", "score": score,
                "comment": None if score >= 7 else self.rnd.choice(["Too expensive", "Missing features",
                                                                    "Support is slow", None]),
                "permalink": f"https://delighted.com/r/{rid}", "created_at": ts, "updated_at": ts,
                "person_properties": {"salesforce_account_id": acct.sf_id, "Company": acct.name,
                                      "Email": contact["Email"]},
                "notes": [], "tags": [], "additional_answers": [],
            })
