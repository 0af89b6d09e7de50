"""benchmarks.run full (issue 18): its arguments, the landing view it runs on and its stage grouping.

Cheap: no run of the command. The whole benchmark is `python -m benchmarks.run full --size demo`
(BENCHMARKS.md, "End to end").
"""

import json
from pathlib import Path

import dagster as dg
import pytest

from benchmarks import full
from benchmarks.run import build_parser


def test_full_arguments():
    args = build_parser().parse_args(["full", "--size", "large", "--landing", "/x/landing", "--work", "/x/w", "--keep",
                                      "--memory-limit", "8GB", "--rerun-without-new-day"])
    assert (args.memory_limit, args.rerun_without_new_day) == ("8GB", True)
    spill = build_parser().parse_args(["full", "--max-temp-size", "20GB", "--temp-dir", "/x/spill"])
    assert (spill.max_temp_size, spill.temp_dir) == ("20GB", Path("/x/spill"))
    env = full.run_env(Path("/x/w"), Path("/x/v"), Path("/x/g"), "demo", 42, "8GB", "20GB", Path("/x/spill"))
    assert (env["CS_KPIS_DUCKDB_MEMORY_LIMIT"], env["CS_KPIS_DUCKDB_MAX_TEMP_SIZE"],
            env["CS_KPIS_DUCKDB_TEMP_DIR"]) == ("8GB", "20GB", "/x/spill")
    assert (args.what, args.size, args.landing, args.work, args.keep, args.seed) == (
        "full", "large", Path("/x/landing"), Path("/x/w"), True, 42)
    defaults = build_parser().parse_args(["full"])
    assert (defaults.size, defaults.landing, defaults.work, defaults.keep) == ("demo", None, None, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["full", "--size", "huge"])


def test_stage_table_sums_steps_and_takes_the_peak_sampled_while_they_ran():
    steps = {"raw__crm": (10.0, 14.0, True), "raw__billing": (14.0, 20.0, False),
             "staging__stg_a": (20.0, 20.05, True), "mystery": (21.0, 22.0, True)}
    stages = {"raw__crm": "raw", "raw__billing": "raw", "staging__stg_a": "staging"}
    samples = [(9.0, 5000.0), (11.0, 300.0), (15.0, 900.0), (19.9, 700.0), (20.1, 650.0), (21.5, 100.0)]
    rows = full.stage_table(steps, stages, samples)
    assert [r["stage"] for r in rows] == ["raw", "staging", "other"]
    raw, staging, other = rows
    assert (raw["steps"], raw["seconds"], raw["failed"], raw["peak_rss_mb"]) == (2, 10.0, 1, 900)
    # shorter than the sampling interval: the nearest sample (20.1 s), never the one before the run (9 s)
    assert (staging["steps"], staging["peak_rss_mb"]) == (1, 650)
    assert other["peak_rss_mb"] == 100


def _page(ids: list[str]) -> str:
    return json.dumps({"object": "list", "has_more": False, "data": [{"id": i} for i in ids]})


def test_landing_view_cuts_days_and_counts_then_adds_the_next_day(tmp_path):
    landing, view = tmp_path / "landing", tmp_path / "view"
    d1, d2 = "2026-10-30", "2026-10-31"
    for day, ids in ((d1, ["a", "b"]), (d2, ["b", "c"])):
        (landing / "billing" / "invoices" / day).mkdir(parents=True)
        (landing / "billing" / "invoices" / day / "part-00001.json").write_text(_page(ids))
    for day, lines in (("2026-10-29", 3), (d1, 2), (d2, 4)):
        (landing / "product" / "events" / day).mkdir(parents=True)
        (landing / "product" / "events" / day / "part-00001.jsonl").write_text('{"x":1}\n' * lines)
    (landing / "reference").mkdir()
    (landing / "reference" / "fx_rates.csv").write_text("date,currency,rate\n")
    (landing / ".cs_kpis_simulator.json").write_text("{}")
    counts = {"billing/invoices": 3, "product/events": 9}
    (landing / "_manifest.json").write_text(json.dumps({"extract_days": [d2, d1], "counts": counts}))

    assert full.landing_view(landing, view, 1) == [d1]
    files = sorted(str(p.relative_to(view)) for p in view.rglob("*") if p.is_file())
    assert files == ["_manifest.json", f"billing/invoices/{d1}/part-00001.json",
                     "product/events/2026-10-29/part-00001.jsonl", f"product/events/{d1}/part-00001.jsonl",
                     "reference/fx_rates.csv"]
    first = json.loads((view / "_manifest.json").read_text())
    assert (first["extract_days"], first["counts"]) == ([d1], {"billing/invoices": 2, "product/events": 5})

    assert full.landing_view(landing, view, 2) == [d1, d2]
    second = json.loads((view / "_manifest.json").read_text())
    assert (second["extract_days"], second["counts"]) == ([d1, d2], counts)
    assert (view / "billing" / "invoices" / d2 / "part-00001.json").read_text() == _page(["b", "c"])
    # the landing folder is only read
    assert json.loads((landing / "_manifest.json").read_text())["extract_days"] == [d2, d1]


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    tmp = tmp_path_factory.mktemp("defs")
    with pytest.MonkeyPatch.context() as mp:
        for name, relative in (("CS_KPIS_STATE_DIR", "state"), ("CS_KPIS_WAREHOUSE", "state/w.duckdb"),
                               ("CS_KPIS_DLT_DIR", "state/dlt"), ("DAGSTER_HOME", "state/dagster_home"),
                               ("CS_KPIS_LANDING_DIR", "landing"), ("CS_KPIS_GROUND_TRUTH_DIR", "ground_truth")):
            mp.setenv(name, str(tmp / relative))
        from cs_kpis.definitions import defs as load_defs

        yield load_defs()


def test_every_step_of_the_run_has_a_stage(defs):
    stages = full.step_stages(defs)
    job = defs.resolve_implicit_global_asset_job_def()
    assert set(stages) == {node.name for node in job.nodes}
    assert set(stages.values()) <= set(full.STAGES)
    # asset steps by their group, check-only steps by the group of the asset they check
    assert stages["landing__demo_company"] == "landing"
    assert stages["kpis__account_indicators_daily"] == "health"
    assert stages["kpis__revenue_monthly"] == "kpis"
    # (a raw asset's blocking checks run in one step: cs_kpis.lib.checks.batch_checks)
    check_steps = [name for name in stages if name.startswith("raw__") and name.endswith("__blocking_checks")]
    assert check_steps and {stages[name] for name in check_steps} == {"raw"}


def test_progress_waits_for_the_instance_then_writes_the_stages_so_far(tmp_path, monkeypatch):
    home, path = tmp_path / "dagster_home", tmp_path / "full.progress.json"
    full.write_progress(path, "full", home, dict, [])
    assert not path.exists()  # the run has not created its instance yet: nothing to report
    (home / "storage").mkdir(parents=True)
    steps = {"raw__crm": (10.0, 14.0, True), "staging__stg_a": (14.0, 15.0, True)}
    monkeypatch.setattr(full, "step_intervals", lambda h: ("run-1", steps))
    full.write_progress(path, "full", home, lambda: {"raw__crm": "raw", "staging__stg_a": "staging"},
                        [(11.0, 300.0), (14.5, 700.0)])
    out = json.loads(path.read_text())
    assert (out["run_id"], out["partial"], out["steps_finished"]) == ("run-1", True, 2)
    assert [(r["stage"], r["seconds"], r["peak_rss_mb"]) for r in out["stages"]] == [("raw", 4.0, 300),
                                                                                    ("staging", 1.0, 700)]
    assert out["step_seconds"] == {"raw__crm": 4.0, "staging__stg_a": 1.0}
    assert out["sampled_peak_rss_mb_so_far"] == 700


def test_run_env_passes_the_memory_limit_and_nothing_inherited(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DUCKDB_MEMORY_LIMIT", "1GB")
    env = full.run_env(tmp_path, tmp_path / "view", tmp_path / "gt", "large", 42)
    assert "CS_KPIS_DUCKDB_MEMORY_LIMIT" not in env
    assert full.run_env(tmp_path, tmp_path / "view", tmp_path / "gt", "large", 42, "8GB")[
        "CS_KPIS_DUCKDB_MEMORY_LIMIT"] == "8GB"
