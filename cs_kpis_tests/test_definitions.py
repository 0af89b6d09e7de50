"""The code location loads, and every asset and check carries the metadata the UI and the layout rely on."""

import re

import dagster as dg
import pytest

LAYERS = {"landing", "raw", "staging", "marts", "kpis", "alerts", "reports"}


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    # loading must not touch the repo's .state/ (resources.py creates the warehouse folder)
    tmp = tmp_path_factory.mktemp("defs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS_KPIS_STATE_DIR", str(tmp / "state"))
        mp.setenv("CS_KPIS_WAREHOUSE", str(tmp / "state" / "warehouse" / "cs_kpis.duckdb"))
        mp.setenv("CS_KPIS_DLT_DIR", str(tmp / "state" / "dlt"))
        mp.setenv("DAGSTER_HOME", str(tmp / "state" / "dagster_home"))
        mp.setenv("CS_KPIS_LANDING_DIR", str(tmp / "landing"))
        mp.setenv("CS_KPIS_GROUND_TRUTH_DIR", str(tmp / "ground_truth"))
        from cs_kpis.definitions import defs as load_defs

        loaded = load_defs()
        # build the repository now, inside the patched env: resources and jobs resolve here
        loaded.get_repository_def().load_all_definitions()
        yield loaded


def _specs(defs: dg.Definitions) -> list[dg.AssetSpec]:
    return list(defs.resolve_all_asset_specs())


def test_defs_load_with_assets(defs):
    assert dg.AssetKey(["landing", "demo_company"]) in defs.resolve_all_asset_keys()


def test_duckdb_resource_and_in_process_executor(defs):
    repo = defs.get_repository_def()
    assert "duckdb" in repo.get_top_level_resources()
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == dg.in_process_executor.name


def test_every_asset_key_starts_with_a_layer(defs):
    bad = [s.key.to_user_string() for s in _specs(defs) if s.key.path[0] not in LAYERS]
    assert not bad, f"asset keys must start with one of {sorted(LAYERS)}: {bad}"


# the order data flows in: a table reads only tables of its own layer or of earlier ones
LAYER_ORDER = ("landing", "raw", "staging", "marts", "kpis", "alerts", "reports")


def test_data_flows_one_way_no_layer_reads_a_later_one(defs):
    graph = defs.resolve_asset_graph()
    rank = {layer: i for i, layer in enumerate(LAYER_ORDER)}
    backwards = sorted(
        f"{key.to_user_string()} reads {parent.to_user_string()}"
        for key in graph.get_all_asset_keys() for parent in graph.get(key).parent_keys
        if rank.get(parent.path[0], -1) > rank.get(key.path[0], len(rank)))
    assert not backwards, backwards


@pytest.mark.parametrize(
    ("what", "missing"),
    [
        ("description", lambda s: not (s.description or "").strip()),
        ("group", lambda s: not s.group_name or s.group_name == "default"),
        ("kind", lambda s: not s.kinds),
        ("owner", lambda s: not s.owners),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_asset_has(defs, what, missing):
    bad = [s.key.to_user_string() for s in _specs(defs) if missing(s)]
    assert not bad, f"assets without a {what}: {bad}"


def test_every_asset_check_has_a_description(defs):
    asset_graph = defs.resolve_asset_graph()
    specs = [asset_graph.get_check_spec(key) for key in asset_graph.asset_check_keys]
    assert specs, "expected at least the landing checks"
    bad = [f"{s.asset_key.to_user_string()}:{s.name}" for s in specs if not (s.description or "").strip()]
    assert not bad, f"asset checks without a description: {bad}"


def test_kpi_tables_have_a_nightly_freshness_policy(defs):
    """The KPI tables a CS team reads go stale after a missed nightly run; raw sources have their own."""
    specs = [s for s in defs.resolve_all_asset_specs() if s.key.path[0] in ("kpis", "raw")]
    assert specs
    missing = [s.key.to_user_string() for s in specs if s.freshness_policy is None]
    assert missing == []


def test_the_checks_of_one_asset_run_in_one_step_per_blocking(defs):
    """cs_kpis.lib.checks.batch_checks: a step per check cost ~70 CPU ms of Dagster, pool and connection;
    the checks of one asset share one step (one for the blocking ones, one for the others). The checks with
    run config of their own (raw's quarantine share, xref's unmatched MRR share) are alone in theirs."""
    graph = defs.resolve_asset_graph()
    steps: dict[tuple, set[str]] = {}
    for assets_def in graph.assets_defs:
        for key in assets_def.check_keys:
            steps.setdefault((key.asset_key, graph.get_check_spec(key).blocking), set()).add(assets_def.node_def.name)
    split = {k: v for k, v in steps.items() if len(v) > 1}
    assert not split, split
    checks = len(graph.asset_check_keys)
    assert checks > 150 and len({n for v in steps.values() for n in v}) < checks * 0.6


def _in_process_order(job: dg.JobDefinition) -> list[str]:
    """The steps of a run of ``job`` in the order the in-process executor (``python -m cs_kpis.run``) starts them,
    every step succeeding: Dagster's own choice, as its plan iterator makes it (``ExecutionPlan.start``, then
    ``ActiveExecution.get_next_step`` until complete)."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.plan.outputs import StepOutputHandle
    from dagster._core.execution.retries import RetryMode

    order = []
    with create_execution_plan(job).start(RetryMode.DISABLED) as active:
        while not active.is_complete:
            step = active.get_next_step()
            order.append(step.key)
            for output in step.step_outputs:
                active.mark_step_produced_output(StepOutputHandle(step.key, output.name))
            active.mark_success(step.key)
    return order


def test_a_command_run_takes_billing_and_product_first_then_the_systems_extracted_ahead(defs):
    """defs/raw/prefetch.py: raw_billing starts the background process extracting support, crm and nps, then
    billing's and product's long steps run while it works; their own steps come last, in the order extracted."""
    order = _in_process_order(defs.resolve_implicit_global_asset_job_def())
    raw = [key for key in order if re.fullmatch(r"raw_[a-z]+", key)]  # the systems' steps, not their checks'
    assert raw == ["raw_billing", "raw_product", "raw_support", "raw_crm", "raw_nps"]
    first = order.index("raw_billing")
    assert order[first:first + len(raw)] == raw, order  # one after the other: no other step between them
