"""Run one asset check the way Dagster does (resources, run config), against a given warehouse file."""

import dagster as dg
from dagster_duckdb import DuckDBResource


def run_check(
    check: dg.AssetChecksDefinition, warehouse, config: dict | None = None
) -> dg.AssetCheckEvaluation:
    [spec] = check.check_specs
    run_config = {"ops": {check.node_def.name: {"config": config}}} if config is not None else None
    result = dg.materialize(
        [dg.AssetSpec(spec.asset_key), check],
        selection=dg.AssetSelection.checks(check),
        resources={"duckdb": DuckDBResource(database=str(warehouse))},
        run_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,  # a failed blocking check fails the run; the evaluation is what we test
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation
