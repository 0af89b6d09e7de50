"""A minimal landing folder and a stand-in simulator, for tests that must not depend on the real one."""

import json
from pathlib import Path

# the manifest's "<system>/<entity>" count keys: every entity of docs/LANDING.md
FAKE_ENTITIES = (
    "crm/Account",
    "crm/User",
    "crm/Contact",
    "crm/Opportunity",
    "billing/customers",
    "billing/products",
    "billing/prices",
    "billing/coupons",
    "billing/subscriptions",
    "billing/invoices",
    "billing/events",
    "support/organizations",
    "support/tickets",
    "support/ticket_metrics",
    "support/satisfaction_ratings",
    "nps/survey_responses",
    "product/events",
)


def _empty_part(entity: str) -> tuple[str, str]:
    """The file name and body of an empty first part, in the entity's API envelope (docs/LANDING.md)."""
    system, name = entity.split("/")
    if system == "crm":
        return "part-00001.json", json.dumps({"totalSize": 0, "done": True, "records": []})
    if system == "billing":
        return "part-00001.json", json.dumps(
            {"object": "list", "url": f"/v1/{name}", "has_more": False, "data": []}
        )
    if system == "support":
        return "part-00001.json", json.dumps({name: [], "next_page": None, "end_of_stream": True, "count": 0})
    if system == "product":
        return "part-00001.jsonl", ""
    return "part-00001.json", "[]"


def write_fake_landing(
    landing_dir: Path, size: str = "demo", seed: int = 42, extract_days: tuple[str, ...] = ("2026-01-31",)
) -> dict:
    """One empty part per entity and extract day, an empty fx_rates.csv, then the manifest (written last, as
    the contract says).

    The manifest claims 3 rows per entity while the parts are empty: enough for the landing check, and
    loaders see a valid, empty export.
    """
    for entity in FAKE_ENTITIES:
        name, body = _empty_part(entity)
        for day in extract_days:
            part = Path(landing_dir) / entity / day / name
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_text(body)
    fx = Path(landing_dir) / "reference" / "fx_rates.csv"
    fx.parent.mkdir(parents=True, exist_ok=True)
    fx.write_text("date,currency,rate\n")
    manifest = {
        "generator": "cs_kpis_tests.landing_fakes",
        "seed": seed,
        "size": size,
        "start_date": "2025-01-01",
        "end_date": extract_days[-1],
        "as_of": extract_days[0],
        "extract_days": list(extract_days),
        "reporting_currency": "USD",
        "bad_input": False,
        "counts": {entity: 3 for entity in FAKE_ENTITIES},
    }
    (Path(landing_dir) / "_manifest.json").write_text(json.dumps(manifest))
    return manifest
