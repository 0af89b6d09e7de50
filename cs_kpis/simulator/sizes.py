"""The three company sizes: who is in the company and how much history it has."""

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    name: str
    accounts: int
    start_date: dt.date
    end_date: dt.date
    users_cap: int
    """product users tracked per account (seats beyond this exist but send no events)"""
    events_per_active_user: float
    """mean tracked events per active user per day, before health scaling"""
    unmatched_customers: int
    unmatched_organizations: int


SIZES: dict[str, SizeSpec] = {
    s.name: s
    for s in (
        SizeSpec("tiny", 60, dt.date(2025, 9, 1), dt.date(2026, 10, 31), 6, 1.5, 2, 1),
        SizeSpec("demo", 1000, dt.date(2024, 11, 1), dt.date(2026, 10, 31), 12, 1.2, 8, 3),
        SizeSpec("large", 100_000, dt.date(2021, 11, 1), dt.date(2026, 10, 31), 3, 0.5, 600, 40),
    )
}
