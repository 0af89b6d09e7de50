"""The landing folder's check, run before anything loads it: blocking, so an incomplete folder stops the run."""

import dagster as dg

from cs_kpis import config
from cs_kpis.defs.config_resources import LandingResource
from cs_kpis.defs.landing.manifest import PROBLEM_HELP, manifest_problems, problems_text, try_read_manifest

LANDING_MANIFEST_COMPLETE = "landing_manifest_complete"


def build_landing_check(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name=LANDING_MANIFEST_COMPLETE,
        # an incomplete landing folder would load as silently missing customers, invoices or events
        blocking=True,
        description=(
            "The landing folder exists and is complete: a readable _manifest.json (written last by the "
            "exporter) listing its extract days, a folder for every extract day, a part for every entity of "
            "each system in files mode on the first (snapshot) day, reference/fx_rates.csv when billing is on, "
            "and, when the manifest counts rows, something on disk and more than zero rows for each counted "
            "entity. A malformed manifest fails this check (never the loading of the code)."
        ),
    )
    def landing_manifest_complete(landing: LandingResource) -> dg.AssetCheckResult:
        cfg = config.load()
        fx_rates, landing = landing.fx_rates, landing.landing
        manifest, error = try_read_manifest(landing) if landing.is_dir() else (None, None)
        problems = manifest_problems(landing, manifest, systems=cfg.enabled("files"), manifest_error=error,
                                     fx_rates=fx_rates)
        text = problems_text(landing, problems)
        return dg.AssetCheckResult(
            passed=text is None,
            severity=dg.AssetCheckSeverity.ERROR,
            description=text,
            metadata={kind: dg.MetadataValue.json(found) for kind, found in problems.items()}
            | {"path": dg.MetadataValue.path(str(landing)),
               "what the kinds mean": dg.MetadataValue.json(PROBLEM_HELP)},
        )

    return landing_manifest_complete
