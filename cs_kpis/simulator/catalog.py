"""The demo company's price book, coupons and exchange rates.

Annual prices are multiples of 12 and quarterly prices multiples of 3 (in minor units), so that list
MRR is a whole number of cents, as it is for most real price books.
"""

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

CURRENCIES = ("usd", "eur", "gbp")
REPORTING_CURRENCY = "USD"

# tier -> monthly unit price (minor units) per currency; per-seat unless flat
TIERS = {
    "starter": {"name": "Starter", "per_seat": False, "monthly": {"usd": 4900, "eur": 4500, "gbp": 3900}},
    "growth": {"name": "Growth", "per_seat": True, "monthly": {"usd": 2500, "eur": 2300, "gbp": 2000}},
    "enterprise": {"name": "Enterprise", "per_seat": True, "monthly": {"usd": 6000, "eur": 5500, "gbp": 4800}},
}
TIER_ORDER = ("starter", "growth", "enterprise")
ADDON = {"name": "Analytics add-on", "monthly": {"usd": 19900, "eur": 18300, "gbp": 15900}}
METERED = {"name": "API calls", "unit_amount": {"usd": 1, "eur": 1, "gbp": 1}}

# interval name -> (stripe interval, interval_count, months, multiplier on the monthly price)
INTERVALS = {
    "month": ("month", 1, 1, Fraction(1)),
    "quarter": ("month", 3, 3, Fraction(95, 100)),
    "year": ("year", 1, 12, Fraction(85, 100)),
}

KEY_FEATURES = (
    "Report Created",
    "Dashboard Shared",
    "Alert Configured",
    "Integration Connected",
    "Workflow Automated",
    "API Key Created",
)
PLAN_FEATURES = {"starter": 3, "growth": 5, "enterprise": 6}
ONBOARDING_MILESTONES = ("Data Source Connected", "Teammate Invited", "Report Created", "Dashboard Shared")
VALUE_EVENT = "Report Created"
GENERIC_EVENTS = ("Signed In", "Search Performed", "Report Viewed")

COUPONS = {
    "WELCOME20": {"percent_off": 20.0, "amount_off": None, "duration": "repeating", "duration_in_months": 3},
    "LAUNCH25": {"percent_off": 25.0, "amount_off": None, "duration": "repeating", "duration_in_months": 6},
    "PARTNER10": {"percent_off": 10.0, "amount_off": None, "duration": "forever", "duration_in_months": None},
    "ONBOARD50": {"percent_off": 50.0, "amount_off": None, "duration": "once", "duration_in_months": None},
    "LOYAL100": {"percent_off": None, "amount_off": 10000, "duration": "forever", "duration_in_months": None,
                 "currency": "usd"},
}


@dataclass(frozen=True)
class Price:
    id: str
    product: str
    tier: str  # starter/growth/enterprise/addon/metered
    currency: str
    interval_key: str
    unit_amount: int
    metered: bool = False

    @property
    def months(self) -> int:
        return INTERVALS[self.interval_key][2]

    def to_stripe(self, created: int) -> dict:
        interval, count, _, _ = INTERVALS[self.interval_key]
        return {
            "id": self.id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": f"{self.tier}_{self.interval_key}_{self.currency}",
            "metadata": {"plan_tier": self.tier},
            "nickname": f"{self.tier.title()} {self.interval_key}ly {self.currency.upper()}",
            "product": self.product,
            "recurring": {
                "interval": interval,
                "interval_count": count,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "metered" if self.metered else "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }


def _round_to_multiple(x: Fraction, m: int) -> int:
    return round(x / m) * m


def build_prices(ids) -> dict[tuple, Price]:
    """Every price in the book, keyed by (tier, currency, interval_key)."""
    prices: dict[tuple, Price] = {}
    n = 0
    for tier, spec in TIERS.items():
        for cur in CURRENCIES:
            for ik, (_, _, months, mult) in INTERVALS.items():
                amount = _round_to_multiple(spec["monthly"][cur] * months * mult, months)
                prices[(tier, cur, ik)] = Price(ids.stripe("price", n, 24), ids.stripe("prod", tier), tier, cur, ik,
                                                amount)
                n += 1
    for cur in CURRENCIES:
        prices[("addon", cur, "month")] = Price(ids.stripe("price", n, 24), ids.stripe("prod", "addon"), "addon", cur,
                                                "month", ADDON["monthly"][cur])
        n += 1
        prices[("metered", cur, "month")] = Price(ids.stripe("price", n, 24), ids.stripe("prod", "metered"), "metered",
                                                  cur, "month", METERED["unit_amount"][cur], metered=True)
        n += 1
    return prices


def products(ids, created: int) -> list[dict]:
    names = {t: s["name"] for t, s in TIERS.items()} | {"addon": ADDON["name"], "metered": METERED["name"]}
    return [
        {"id": ids.stripe("prod", t), "object": "product", "active": True, "created": created, "description": None,
         "livemode": False, "metadata": {"plan_tier": t}, "name": name, "type": "service", "updated": created}
        for t, name in names.items()
    ]


def coupon_objects(created: int) -> list[dict]:
    out = []
    for cid, c in COUPONS.items():
        out.append({
            "id": cid, "object": "coupon", "amount_off": c["amount_off"], "created": created,
            "currency": c.get("currency"), "duration": c["duration"], "duration_in_months": c["duration_in_months"],
            "livemode": False, "max_redemptions": None, "metadata": {}, "name": cid, "percent_off": c["percent_off"],
            "redeem_by": None, "times_redeemed": 0, "valid": True,
        })
    return out


def fx_rates(start: dt.date, end: dt.date, seed: int) -> dict[str, dict[dt.date, Fraction]]:
    """Daily rates to USD as exact 4-decimal fractions: a gentle random walk per currency."""
    rng = np.random.default_rng([seed, 77])
    days = (end - start).days + 1
    out: dict[str, dict[dt.date, Fraction]] = {"usd": {}}
    for cur, base in (("eur", 1.0850), ("gbp", 1.2650)):
        walk = base + np.cumsum(rng.normal(0, 0.0025, days))
        out[cur] = {start + dt.timedelta(i): Fraction(round(float(v) * 10000), 10000) for i, v in enumerate(walk)}
    for i in range(days):
        out["usd"][start + dt.timedelta(i)] = Fraction(1)
    return out
