"""Ground truth for end-to-end tests: what each account's MRR really was at every month end.

Computed from the simulation's own subscription history, independently of the pipeline's SQL, by the
rules in docs/KPI_DEFINITIONS.md:
- a subscription's MRR in force on day d is its state at the end of day d (a subscription that ends
  on day d contributes nothing on d);
- local MRR is exact (fractions of a cent kept), converted at the FX rate of the day the current MRR
  value took effect, then rounded half-up to the cent per subscription; an account's MRR is the sum;
- a past-due spell longer than DELINQUENT_AFTER_DAYS (as known at the end of the last extract day)
  makes the subscription churned from the day it went past due until the day the spell ended (then it
  counts again, unless it ended with the subscription): a spell still open that began during day P has
  lasted more than 30 days once last_day - P >= 30, one that ended on day E when E - P > 30 (a spell
  ends, as Stripe's past_due status does, when a later invoice is paid, even a 0.00 renewal while the
  failed invoice stays open: company.py);
- the month end of the current, unfinished month is the last extract day.
"""

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

from .company import DELINQUENT_AFTER_DAYS, Company, Sub, day_of


def month_ends(start: dt.date, last_day: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first day of month, the day its month-end MRR is read) for every month up to last_day's."""
    out, m = [], dt.date(start.year, start.month, 1)
    while m <= last_day:
        nxt = dt.date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        out.append((m, min(nxt - dt.timedelta(days=1), last_day)))
        m = nxt
    return out


def to_cents(x: Fraction) -> Decimal:
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def subscription_steps(s: Sub, fx: dict, last_day: dt.date) -> list[tuple[dt.date, Decimal]]:
    """The subscription's MRR in the reporting currency as (from_day, value) steps, end-of-day state."""
    by_day: dict[dt.date, Fraction] = {}
    for ts, mrr in s.mrr_history:
        d = day_of(ts)
        if d <= last_day:
            by_day[d] = mrr  # the last change of a day is the day's state
    steps, prev = [], None
    for d in sorted(by_day):
        local = by_day[d]
        if local == prev:
            continue
        prev = local
        steps.append((d, to_cents(local / 100 * fx[s.currency][d])))
    for start_ts, end_ts in s.past_due_spells:
        start = day_of(start_ts)
        if start > last_day:
            continue
        end = day_of(end_ts) if end_ts is not None and day_of(end_ts) <= last_day else None
        # days it was past due at the end of a day: start .. end - 1, or start .. last_day while still
        # open. An open spell that began during day P has lasted more than 30 days at the end of the
        # last day as soon as last_day - P >= 30 (its 31st end of day).
        days_past_due = ((end or last_day + dt.timedelta(days=1)) - start).days
        if days_past_due > DELINQUENT_AFTER_DAYS:
            # delinquent: churned from the day it went past due, and back from the day the spell ended
            # (an invoice was paid: active again, e.g. after a 0.00 renewal 31 days on) at the value in
            # force that day, 0.00 when the spell ended with the subscription
            kept = [(d, v) for d, v in steps if d < start]
            back = [] if end is None else [(end, value_on(steps, end))] + [(d, v) for d, v in steps if d > end]
            steps = kept + [(start, Decimal("0.00"))] + back
    return steps


def value_on(steps: list[tuple[dt.date, Decimal]], day: dt.date) -> Decimal:
    v = Decimal("0.00")
    for d, val in steps:
        if d > day:
            break
        v = val
    return v


def write_ground_truth(company: Company, out: Path, last_day: dt.date) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    months = month_ends(company.spec.start_date, last_day)
    acct_rows, unmatched_rows, events = [], [], []
    for acct in company.accounts + company.customers_only:
        if not acct.subs:
            continue
        series = [Decimal("0.00")] * len(months)
        for s in acct.subs:
            steps = subscription_steps(s, company.fx, last_day)
            for i, (_, read_day) in enumerate(months):
                series[i] += value_on(steps, read_day)
        first = next((i for i, v in enumerate(series) if v > 0), None)
        if first is None:
            continue
        for i in range(first, len(months)):
            m = months[i][0].isoformat()
            if acct.sf_id:
                acct_rows.append((m, acct.sf_id, f"{series[i]:.2f}"))
            else:
                unmatched_rows.append((m, acct.customer_id, f"{series[i]:.2f}"))
            if acct.sf_id and i > first:
                if series[i - 1] > 0 and series[i] == 0:
                    events.append((acct.sf_id, m, "churn"))
                elif series[i - 1] == 0 and series[i] > 0:
                    events.append((acct.sf_id, m, "reactivation"))
    _csv(out / "mrr_month_end.csv", ("month", "account_id", "mrr"), acct_rows)
    _csv(out / "unmatched_customers_mrr_month_end.csv", ("month", "customer_id", "mrr"), unmatched_rows)
    _csv(out / "churn_events.csv", ("account_id", "month", "event"), events)
    return {"account_months": len(acct_rows), "churn": sum(e[2] == "churn" for e in events),
            "reactivation": sum(e[2] == "reactivation" for e in events)}


def write_crm_truth(company: Company, out: Path, last_day: dt.date) -> int:
    """``crm_account_fields.csv``: each account's tracked CRM fields (owner_id, csm_id, segment,
    csm_sentiment) as end-of-day values, one row per day a field took a new value (from the account's
    creation on, the whole history: nothing is cut at Salesforce's 18 months here). The value holds until
    the field's next row. Taken from the simulation's own record of every Account version, never from the
    exported AccountHistory."""
    by_day: dict[tuple[str, str, dt.date], str | None] = {}
    for ts, account_id, name, value in company.crm_truth:
        d = day_of(ts)
        if d <= last_day:
            by_day[(account_id, name, d)] = value  # the last change of a day is the day's state
    rows, prev = [], {}
    for (account_id, name, d) in sorted(by_day):
        value = by_day[(account_id, name, d)]
        if (account_id, name) in prev and prev[(account_id, name)] == value:
            continue
        prev[(account_id, name)] = value
        rows.append((account_id, name, d.isoformat(), "" if value is None else value))
    _csv(out / "crm_account_fields.csv", ("account_id", "field", "from_day", "value"), rows)
    return len(rows)


def _csv(path: Path, header: tuple, rows: list) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
