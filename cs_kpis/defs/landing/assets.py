"""The landing asset: the source systems' exports in the landing folder (docs/LANDING.md).

Which asset exists depends on the profile (cs_kpis/config.py):

- demo profile (no CS_KPIS_CONFIG): ``landing/demo_company``. It runs the simulator only into an empty or
  missing folder, or into a folder the simulator generated itself (cs_kpis/folder_guard.py). A folder
  holding anything else, with or without a manifest, is never written: with a manifest it is read as is;
  without one (or with a malformed one) it is recorded as incomplete and the blocking check stops the run;
  ``regenerate: true`` on it fails the asset, naming the folder.
- company profile: ``landing/exports``. Nothing ever generates. The asset records what the folder holds;
  an empty or incomplete folder fails the blocking check ``landing_manifest_complete`` (checks.py), which
  stops the run before anything loads, with a message naming the folder and what is missing.
"""

import json
from pathlib import Path

import dagster as dg
from pydantic import Field

from cs_kpis import config, folder_guard, settings
from cs_kpis.defs.config_resources import LandingResource
from cs_kpis.defs.landing.keys import DEMO_KEY, EXPORTS_KEY
from cs_kpis.defs.landing.manifest import (
    counts_markdown,
    manifest_fingerprint,
    manifest_path,
    manifest_problems,
    problems_text,
    try_read_manifest,
)


class CompanyConfigResource(dg.ConfigurableResource):
    """The company configuration file (CS_KPIS_CONFIG; empty: the built-in demo profile), shown in the UI."""

    config_file: str = Field(default="", description="path of the company configuration file; empty: demo profile")

    def load(self) -> config.CompanyConfig:
        return config.load_file(self.config_file) if self.config_file else config.DEMO


class DemoCompanyConfig(dg.Config):
    # None means "from settings", read at run time so CS_KPIS_DEMO_SIZE / CS_KPIS_DEMO_SEED apply
    size: str | None = Field(
        default=None, description="simulator size preset; default CS_KPIS_DEMO_SIZE or 'demo'"
    )
    seed: int | None = Field(default=None, description="simulator seed; default CS_KPIS_DEMO_SEED or 42")
    regenerate: bool = Field(
        default=False,
        description="generate again although the folder has a manifest; only ever done in a folder the "
        "simulator generated itself",
    )


def _metadata(landing: Path, manifest: dict | None, generated: bool, problems: dict[str, list[str]]) -> dict:
    manifest = manifest or {}
    counts: dict[str, int] = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
    extract_days = [str(day) for day in manifest.get("extract_days") or []] if isinstance(
        manifest.get("extract_days"), list) else []
    problem = problems_text(landing, problems)
    return {
        "generated": generated,
        "complete": problem is None,
        "problems": problem or "",
        "size": str(manifest.get("size")),
        "seed": manifest.get("seed"),
        "as_of": str(manifest.get("as_of") or (extract_days[0] if extract_days else None)),
        "extract_days": dg.MetadataValue.json(extract_days),
        "extract_day_count": len(extract_days),
        "counts": dg.MetadataValue.md(counts_markdown(counts)),
        "dagster/row_count": sum(v for v in counts.values() if isinstance(v, int)),
        "path": dg.MetadataValue.path(str(landing)),
        "manifest": dg.MetadataValue.json(json.loads(json.dumps(manifest, default=str))),
    }


def _version(manifest: dict | None, problems: dict[str, list[str]]) -> dg.DataVersion:
    # downstream raw assets are stale only when the landing folder's content changed
    if manifest is None or any(problems.values()):
        return dg.DataVersion("incomplete-" + manifest_fingerprint({"problems": problems}))
    return dg.DataVersion(manifest_fingerprint(manifest))


def build_demo_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=DEMO_KEY,
        group_name="landing",
        kinds={"python", "json"},
        owners=["team:data-eng"],
        description=(
            "The demo company's exports from CRM, billing, product analytics, support and NPS, in the landing "
            "folder (docs/LANDING.md). The simulator generates them into an empty folder, or regenerates a "
            "folder it generated itself; a folder holding anything else is never written."
        ),
    )
    def demo_company(context: dg.AssetExecutionContext, config: DemoCompanyConfig,
                     landing: LandingResource) -> dg.MaterializeResult:
        ground_truth = Path(landing.ground_truth_dir)
        landing = landing.landing
        size = config.size or settings.demo_size()
        seed = settings.demo_seed() if config.seed is None else config.seed

        manifest, error = try_read_manifest(landing)
        empty = not landing.exists() or (landing.is_dir() and not any(landing.iterdir()))
        ours = folder_guard.is_simulator_folder(landing)
        generated = False
        if config.regenerate or empty or (manifest is None and ours):
            try:
                folder_guard.simulator_may_replace(landing, "landing")
                folder_guard.simulator_may_replace(ground_truth, "ground_truth")
            except folder_guard.NotOurFolder as exc:
                raise dg.Failure(description=f"not generating the demo company: {exc}") from None
            # imported here: the simulator is heavy and only needed when there is something to generate
            from cs_kpis.simulator import generate

            context.log.info(f"generating the demo company (size={size}, seed={seed}) into {landing}")
            generated_manifest = generate(landing, ground_truth, size=size, seed=seed)
            generated = True
            manifest, error = try_read_manifest(landing)
            manifest = manifest or generated_manifest
        elif manifest is None:
            # files but no (usable) manifest: a user's export, finished or still being written. Never touched:
            # recorded as incomplete, and the blocking check stops the run naming the folder and the problem
            why = error or f"no {manifest_path(landing).name}"
            context.log.error(
                f"not generating the demo company: landing folder {landing} holds files but {why}, and the "
                "simulator did not write it, so it is left as is. If it is your export, the exporter writes "
                "_manifest.json last; for your own company use a company profile (CS_KPIS_CONFIG); for the "
                "demo, point CS_KPIS_LANDING_DIR at an empty folder.")
        elif ours and (manifest.get("size"), manifest.get("seed")) != (size, seed):
            context.log.warning(
                f"{manifest_path(landing)} holds size={manifest.get('size')} seed={manifest.get('seed')}, "
                f"not the requested size={size} seed={seed}; materialize with regenerate=true to rebuild it"
            )
        elif not ours:
            context.log.info(f"{landing} holds an export the simulator did not write: read as is, never regenerated")
        problems = manifest_problems(landing, manifest, manifest_error=error)
        return dg.MaterializeResult(metadata=_metadata(landing, manifest, generated, problems),
                                    data_version=_version(manifest, problems))

    return demo_company


def build_exports_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=EXPORTS_KEY,
        group_name="landing",
        kinds={"python", "json"},
        owners=["team:data-eng"],
        description=(
            "Your company's exports from CRM, billing, product analytics, support and NPS in the landing folder "
            "of the company configuration (docs/LANDING.md). Read only: nothing is ever generated or written "
            "here. An empty or incomplete folder fails the blocking check landing_manifest_complete."
        ),
    )
    def exports(context: dg.AssetExecutionContext, company_config: CompanyConfigResource,
                landing: LandingResource) -> dg.MaterializeResult:
        cfg = company_config.load()
        fx_rates, landing = landing.fx_rates, landing.landing
        manifest, error = try_read_manifest(landing) if landing.is_dir() else (None, None)
        problems = manifest_problems(landing, manifest, systems=cfg.enabled("files"), manifest_error=error,
                                     fx_rates=fx_rates)
        problem = problems_text(landing, problems)
        if problem:
            # logged at ERROR so the run command's console shows it; the blocking check stops the run
            context.log.error(problem)
        return dg.MaterializeResult(metadata=_metadata(landing, manifest, False, problems),
                                    data_version=_version(manifest, problems))

    return exports


def build_landing_asset(cfg: config.CompanyConfig) -> dg.AssetsDefinition:
    return build_demo_asset() if cfg.is_demo else build_exports_asset()
