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
    # an amount_off coupon with amounts in other currencies too (Stripe's currency_options): it applies to
    # a euro or pound subscription with that currency's amount
    "LOYAL100": {"percent_off": None, "amount_off": 10000, "duration": "forever", "duration_in_months": None,
                 "currency": "usd", "currency_options": {"eur": {"amount_off": 9000}, "gbp": {"amount_off": 8000}}},
}


def coupon_amount_off(coupon_id: str, currency: str) -> int | None:
    """What an amount_off coupon takes off a subscription in ``currency`` (minor units): its own amount in
    its own currency, else the amount its currency_options give for that currency; None when neither does
    (Stripe would not apply it) or for a percent coupon."""
    c = COUPONS[coupon_id]
    if c["amount_off"] is None:
        return None
    if (c.get("currency") or "").lower() == currency.lower():
        return c["amount_off"]
    return (c.get("currency_options") or {}).get(currency.lower(), {}).get("amount_off")


@dataclass(frozen=True)
class Price:
    id: str
    product: str
    tier: str  # starter/growth/enterprise/addon/metered
    currency: str
    interval_key: str
    unit_amount: int | None
    metered: bool = False
    # the price shapes a few real price books have (Stripe API 2025-03-31.basil):
    unit_amount_decimal: str | None = None  # fractions of a cent, e.g. "2499.5"; unit_amount is then null
    tiers_mode: str | None = None  # graduated or volume: billing_scheme tiered
    tiers: tuple[tuple[int | None, int, int], ...] = ()  # (up_to or None for the last, unit_amount, flat_amount)
    transform_quantity: tuple[int, str] | None = None  # (divide_by, round up/down): units billed in packs
    label: str = ""  # the nickname's variant (e.g. "graduated"), and the lookup key's suffix

    @property
    def months(self) -> int:
        return INTERVALS[self.interval_key][2]

    def amount(self, quantity: int | None) -> Fraction:
        """What one billing period of ``quantity`` units costs, in minor units, by Stripe's pricing rules:
        per unit (unit_amount_decimal, else unit_amount) times the quantity, the quantity first divided by
        transform_quantity.divide_by and rounded up or down; graduated tiers price each unit in the tier it
        falls in, plus the flat amount of every tier reached; volume tiers price every unit in the tier the
        whole quantity falls in, plus that tier's flat amount."""
        q = quantity or 0
        if self.tiers_mode is None:
            unit = Fraction(self.unit_amount_decimal) if self.unit_amount_decimal is not None else Fraction(self.unit_amount)
            if self.transform_quantity is not None:
                divide_by, rnd = self.transform_quantity
                q = -(-q // divide_by) if rnd == "up" else q // divide_by
            return unit * q
        total, lower = Fraction(0), 0
        for up_to, unit, flat in self.tiers:
            top = q if up_to is None else up_to
            if self.tiers_mode == "graduated":
                units = max(0, min(q, top) - lower)
                total += units * unit + (flat if units > 0 else 0)
            elif lower < q <= top:
                total += q * unit + flat
            lower = top if up_to is not None else lower
        return total

    def to_stripe(self, created: int, with_tiers: bool = False) -> dict:
        """The price object; ``tiers`` only when asked (Stripe includes them only with expand[]=tiers, so
        a subscription item's or an event's price never carries them)."""
        interval, count, _, _ = INTERVALS[self.interval_key]
        extra = {}
        if with_tiers and self.tiers_mode is not None:
            extra["tiers"] = [{"flat_amount": flat, "flat_amount_decimal": str(flat), "unit_amount": unit,
                               "unit_amount_decimal": str(unit), "up_to": up_to} for up_to, unit, flat in self.tiers]
        return extra | {
            "id": self.id,
            "object": "price",
            "active": True,
            "created": created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "billing_scheme": "tiered" if self.tiers_mode else "per_unit",
            "lookup_key": f"{self.tier}_{self.interval_key}_{self.currency}" + (f"_{self.label}" if self.label else ""),
            "metadata": {"plan_tier": self.tier},
            "nickname": f"{self.tier.title()} {self.interval_key}ly {self.currency.upper()}"
                        + (f" {self.label}" if self.label else ""),
            "product": self.product,
            "recurring": {
                "interval": interval,
                "interval_count": count,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "metered" if self.metered else "licensed",
            },
            "tax_behavior": "unspecified",
            "tiers_mode": self.tiers_mode,
            "transform_quantity": ({"divide_by": self.transform_quantity[0], "round": self.transform_quantity[1]}
                                   if self.transform_quantity else None),
            "type": "recurring",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": (self.unit_amount_decimal if self.unit_amount_decimal is not None
                                    else None if self.unit_amount is None else str(self.unit_amount)),
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
    # a few monthly growth subscriptions in USD are on one of these (SPECIAL_PRICES): graduated and volume
    # tiers, a price in fractions of a cent, and seats sold in packs of five
    growth = ids.stripe("prod", "growth")
    specials = {
        "graduated": {"unit_amount": None, "tiers_mode": "graduated",
                      "tiers": ((10, 2500, 0), (50, 2000, 0), (None, 1500, 0))},
        "volume": {"unit_amount": None, "tiers_mode": "volume", "tiers": ((20, 2600, 0), (None, 2200, 5000))},
        "decimal": {"unit_amount": None, "unit_amount_decimal": "2499.5"},
        "packs": {"unit_amount": 12000, "transform_quantity": (5, "up")},
    }
    for label, kw in specials.items():
        prices[("growth", "usd", "month", label)] = Price(ids.stripe("price", n, 24), growth, "growth", "usd", "month",
                                                          label=label, **kw)
        n += 1
    return prices


SPECIAL_PRICES = ("graduated", "volume", "decimal", "packs")
"""labels of the growth monthly USD prices a few subscriptions use instead of the per-seat one"""


def products(ids, created: int) -> list[dict]:
    names = {t: s["name"] for t, s in TIERS.items()} | {"addon": ADDON["name"], "metered": METERED["name"]}
    return [
        {"id": ids.stripe("prod", t), "object": "product", "active": True, "created": created, "description": None,
         "livemode": False, "metadata": {"plan_tier": t}, "name": name, "type": "service", "updated": created}
        for t, name in names.items()
    ]


def coupon_objects(created: int, with_currency_options: bool = False) -> list[dict]:
    """The coupons as Stripe sends them. ``currency_options`` is included only when asked for
    (``expand[]=data.currency_options`` on the coupons list); a discount's embedded coupon lacks it."""
    out = []
    for cid, c in COUPONS.items():
        obj = {
            "id": cid, "object": "coupon", "amount_off": c["amount_off"], "created": created,
            "currency": c.get("currency"), "duration": c["duration"], "duration_in_months": c["duration_in_months"],
            "livemode": False, "max_redemptions": None, "metadata": {}, "name": cid, "percent_off": c["percent_off"],
            "redeem_by": None, "times_redeemed": 0, "valid": True,
        }
        if with_currency_options and c.get("currency_options"):
            obj["currency_options"] = c["currency_options"]
        out.append(obj)
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
