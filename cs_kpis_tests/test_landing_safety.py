"""A user's data is sacred: no asset, job or command, in any profile, modifies a folder the simulator did not
write. Every test compares every file's bytes (and the list of files) before and after, and uses the real
simulator (tiny size), so a regression would visibly wipe or overwrite the folder."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from cs_kpis import folder_guard, run
from cs_kpis.simulator import NotOurFolder, generate

REPO = Path(__file__).resolve().parent.parent
PRODUCT = {"key_features": ["A"], "plan_features": {"pro": 1}, "onboarding_milestones": ["A"],
           "value_event": "A", "top_plan": "pro"}


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (and '<dir>' for every folder) under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(folder.rglob("*"))
    }


def write_user_export(landing: Path, half: bool = False) -> None:
    """A user's file and a CRM Account export for 2026-11-30, no manifest (``half``: only the first part
    of a two-part export, as an exporter leaves it mid-write)."""
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "README-from-ops.txt").write_text("our export, please do not delete\n")
    day = landing / "crm" / "Account" / "2026-11-30"
    day.mkdir(parents=True)
    record = {"attributes": {"type": "Account"}, "Id": "001000000000001AAA", "Name": "Real Customer Inc"}
    (day / "part-00001.json").write_text(json.dumps(
        {"totalSize": 2, "done": half, "nextRecordsUrl": "/next", "records": [record]}))
    if not half:
        (day / "part-00002.json").write_text(json.dumps({"totalSize": 2, "done": True, "records": [record]}))


@pytest.fixture
def user_landing(project_env, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")  # were the guard to fail, the wipe would be quick
    write_user_export(project_env.landing_dir)
    return project_env.landing_dir


def _company_profile(tmp_path: Path, landing: Path, monkeypatch) -> None:
    cfg = tmp_path / "company.yaml"
    cfg.write_text(json.dumps({"profile": "acme", "landing_dir": str(landing), "product": PRODUCT}))
    monkeypatch.setenv("CS_KPIS_CONFIG", str(cfg))


def _nightly(regenerate: bool) -> dg.ExecuteInProcessResult:
    from cs_kpis.definitions import defs as load_defs

    defs = load_defs()
    job = defs.get_job_def("nightly")
    run_config = {}
    if regenerate:
        run_config = {"ops": {"landing__demo_company": {"config": {"regenerate": True}}}}
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), run_config=run_config,
                                  raise_on_error=False)


@pytest.mark.parametrize("profile", ["demo", "company"])
def test_no_run_modifies_a_users_folder_without_a_manifest(user_landing, tmp_path, monkeypatch, capsys, profile):
    if profile == "company":
        _company_profile(tmp_path, user_landing, monkeypatch)
    before = snapshot(user_landing)
    assert run.main([]) == 1                       # the run command (make run)
    err = capsys.readouterr()
    assert str(user_landing) in err.out + err.err  # the message names the folder
    assert snapshot(user_landing) == before
    assert not _nightly(regenerate=False).success  # the nightly job, as the 02:00 schedule starts it
    assert snapshot(user_landing) == before
    if profile == "demo":
        assert not _nightly(regenerate=True).success  # a regenerate run
        assert snapshot(user_landing) == before
    assert not (user_landing.parent / (user_landing.name + ".partial")).exists()


def test_a_half_written_export_survives_the_nightly_job_and_a_regenerate_run(project_env, monkeypatch):
    monkeypatch.setenv("CS_KPIS_DEMO_SIZE", "tiny")
    landing = project_env.landing_dir
    write_user_export(landing, half=True)  # the exporter is mid-way: one part, no manifest yet
    before = snapshot(landing)
    nightly, regenerate = _nightly(regenerate=False), _nightly(regenerate=True)
    assert not nightly.success and not regenerate.success
    assert snapshot(landing) == before
    # the exporter finishes: the second part, then the manifest, last
    write_part = landing / "crm" / "Account" / "2026-11-30" / "part-00002.json"
    write_part.write_text(json.dumps({"totalSize": 2, "done": True, "records": []}))
    (landing / "_manifest.json").write_text(json.dumps({"extract_days": ["2026-11-30"]}))
    finished = snapshot(landing)
    assert not _nightly(regenerate=True).success  # still not the simulator's: regenerate refuses
    assert snapshot(landing) == finished


def test_the_simulator_refuses_a_users_folder_and_names_it(tmp_path):
    landing = tmp_path / "landing"
    write_user_export(landing)
    before = snapshot(landing)
    with pytest.raises(NotOurFolder, match=str(landing)):
        generate(landing, tmp_path / "truth", size="tiny", seed=1)
    assert snapshot(landing) == before
    assert not (tmp_path / "truth").exists() and not (tmp_path / "landing.partial").exists()


def test_the_simulator_cli_refuses_a_users_folder(tmp_path):
    landing = tmp_path / "landing"
    write_user_export(landing)
    before = snapshot(landing)
    proc = subprocess.run([sys.executable, "-m", "cs_kpis.simulator", "--size", "tiny", "--landing", str(landing),
                           "--ground-truth", str(tmp_path / "truth")], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode != 0
    assert str(landing) in proc.stderr
    assert snapshot(landing) == before


@pytest.mark.parametrize("name", ["landing.partial", "truth.partial"])
def test_the_simulator_leaves_a_users_partial_named_folder_alone(tmp_path, name):
    partial = tmp_path / name
    partial.mkdir()
    (partial / "mine.csv").write_text("a,b\n")
    with pytest.raises(NotOurFolder, match=name):
        generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=1)
    assert (partial / "mine.csv").read_text() == "a,b\n"
    assert not (tmp_path / "landing").exists() and not (tmp_path / "truth").exists()


def test_the_simulator_refuses_a_ground_truth_folder_with_a_users_file(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "finance.xlsx").write_bytes(b"numbers")
    with pytest.raises(NotOurFolder, match="ground-truth folder"):
        generate(tmp_path / "landing", truth, size="tiny", seed=1)
    assert (truth / "finance.xlsx").read_bytes() == b"numbers"
    assert not (tmp_path / "landing").exists()


def test_the_simulator_regenerates_its_own_folder_but_not_one_a_user_added_to(tmp_path):
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    generate(landing, truth, size="tiny", seed=1)
    assert folder_guard.is_simulator_folder(landing)
    generate(landing, truth, size="tiny", seed=2)  # its own folder: replaced
    assert json.loads((landing / "_manifest.json").read_text())["seed"] == 2
    assert json.loads((truth / ".cs_kpis_simulator.json").read_text())["kind"] == "ground_truth"
    assert not any((tmp_path / f"{name}.{end}").exists() for name in ("landing", "truth")
                   for end in ("replaced", "partial"))
    (landing / "crm" / "Lead").mkdir()
    (landing / "crm" / "Lead" / "leads.json").write_text("[]")
    before = snapshot(landing)
    with pytest.raises(NotOurFolder, match="crm/Lead"):
        generate(landing, truth, size="tiny", seed=3)
    assert snapshot(landing) == before


def test_a_users_file_where_the_old_truth_would_be_parked_stops_the_run_before_either_move(tmp_path):
    # the old ground truth is parked in truth.replaced while the new one moves in; a user's file there was found
    # only after the landing had been replaced, leaving seed 2's landing beside seed 1's truth
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    generate(landing, truth, size="tiny", seed=1)
    parked = tmp_path / "truth.replaced"
    parked.mkdir()
    (parked / "notes.txt").write_text("mine")
    before = snapshot(landing), snapshot(truth)
    with pytest.raises(NotOurFolder, match="truth.replaced"):
        generate(landing, truth, size="tiny", seed=2)
    assert (snapshot(landing), snapshot(truth)) == before
    assert (parked / "notes.txt").read_text() == "mine"


def test_a_crashed_partial_folder_of_the_simulator_is_cleaned_up(tmp_path):
    partial = tmp_path / "landing.partial"
    (partial / "crm" / "Account").mkdir(parents=True)
    folder_guard.write_mark(partial, "partial")
    (partial / "product").mkdir()  # written after the mark, as a crash mid-way leaves it
    generate(tmp_path / "landing", tmp_path / "truth", size="tiny", seed=1)
    assert not partial.exists()
    assert (tmp_path / "landing" / "_manifest.json").is_file()


def test_the_simulator_cli_never_defaults_to_a_company_profiles_folder(tmp_path, monkeypatch):
    landing = tmp_path / "exports"
    landing.mkdir()  # empty: the folder guard alone would allow it
    _company_profile(tmp_path, landing, monkeypatch)
    proc = subprocess.run([sys.executable, "-m", "cs_kpis.simulator", "--size", "tiny",
                           "--ground-truth", str(tmp_path / "truth")], cwd=REPO, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 2 and "CS_KPIS_CONFIG" in proc.stderr
    assert list(landing.iterdir()) == []


def test_a_ground_truth_folder_marked_before_a_crash_is_still_the_simulators(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    folder_guard.write_mark(truth, "ground_truth")  # marked while empty, then the run stopped mid-way
    (truth / "mrr_month_end.csv").write_text("month,account_id,mrr\n")
    folder_guard.simulator_may_replace(truth, "ground_truth")
    (truth / "finance.xlsx").write_bytes(b"numbers")
    with pytest.raises(NotOurFolder, match="finance.xlsx"):
        folder_guard.simulator_may_replace(truth, "ground_truth")
