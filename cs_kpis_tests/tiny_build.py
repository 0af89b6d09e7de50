"""The tiny simulator company (seed 1) generated and built by Dagster under a folder of its own.

Shared by the session fixtures that need a built warehouse (staging, portability): one recipe, so their
inputs cannot drift apart. The environment is patched only while the company is generated and built.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from cs_kpis_tests.conftest import TEST_ENV, ProjectEnv


def build_tiny_company(
    root: Path, select: Callable[[dg.AssetKey], bool], *, checks: bool = True
) -> tuple[ProjectEnv, dg.ExecuteInProcessResult]:
    """Generate the tiny company into ``root`` and materialize the assets ``select`` keeps, with their asset
    checks unless ``checks`` is false; the run must succeed (its failed steps are named otherwise)."""
    paths = {name: root / relative for name, relative in TEST_ENV.items()}
    env = ProjectEnv(*paths.values())
    with pytest.MonkeyPatch.context() as mp:
        for name, path in paths.items():
            mp.setenv(name, str(path))
        mp.setenv("CS_KPIS_DEMO_SIZE", "tiny")
        mp.setenv("CS_KPIS_DEMO_SEED", "1")
        mp.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
        mp.setenv("DLT_DATA_DIR", str(root / "dlt_global"))

        from cs_kpis.simulator import generate

        generate(env.landing_dir, env.ground_truth_dir, size="tiny", seed=1)

        from cs_kpis.definitions import defs as load_defs

        defs = load_defs()
        keys = [k for k in defs.resolve_all_asset_keys() if select(k)]
        job = defs.resolve_implicit_global_asset_job_def()
        if checks:
            result = job.execute_in_process(
                asset_selection=keys, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
            )
        else:
            result = job.get_subset(asset_selection=set(keys), asset_check_selection=set()).execute_in_process(
                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
            )
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return env, result
