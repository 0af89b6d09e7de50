"""Checks on the landing folder, run before anything loads it."""

import dagster as dg

from cs_kpis import settings
from cs_kpis.defs.landing.assets import demo_company
from cs_kpis.defs.landing.manifest import manifest_problems, read_manifest

LANDING_MANIFEST_COMPLETE = "landing_manifest_complete"


@dg.asset_check(
    asset=demo_company,
    name=LANDING_MANIFEST_COMPLETE,
    # an incomplete landing folder would load as silently missing customers, invoices or events
    blocking=True,
    description=(
        "The landing folder has a _manifest.json, a folder for every extract day it lists, and at least "
        "one row and something on disk for every entity it counts."
    ),
)
def landing_manifest_complete() -> dg.AssetCheckResult:
    landing = settings.landing_dir()
    problems = manifest_problems(landing, read_manifest(landing))
    failed = {kind: found for kind, found in problems.items() if found}
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{kind}: {', '.join(found[:10])}" for kind, found in failed.items()) or None,
        metadata={kind: dg.MetadataValue.json(found) for kind, found in problems.items()}
        | {"path": dg.MetadataValue.path(str(landing))},
    )
