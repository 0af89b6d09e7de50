"""Where cs_kpis keeps its state, and the demo-company knobs; every value can be overridden by an env var.

Everything local lives under one git-ignored folder, ``.state/`` at the repo root. The functions read the
environment when called, not at import, so a test's ``monkeypatch.setenv`` takes effect immediately.
No Dagster imports here: the simulator, the dlt sources and the Makefile use this module too.

``python -m cs_kpis.settings`` prepares the folders and prints ``export`` lines for a shell to ``eval``.
"""

import json
import os
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DAGSTER_YAML = """\
# written by cs_kpis.settings.ensure_dagster_home; edit freely, it is not overwritten
telemetry:
  enabled: false

# DuckDB allows one writer per file: every step that touches the warehouse declares a pool, and each
# pool admits one step at a time, so overlapping runs wait instead of failing on the file lock.
concurrency:
  pools:
    default_limit: 1

# dagster's own default: runs launched from the UI, schedules and sensors wait in a queue that the
# daemon (started by `dagster dev`) drains. `python -m cs_kpis.run` executes in-process and skips it.
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
"""

EVENT_LOG_YAML = """
# Dagster's SQLite event log in its default place, with each file's connection kept open between events
# instead of opened and closed for each (cs_kpis/lib/event_log.py): the same files, readable by any Dagster.
# base_dir is this folder's history/runs: after moving or copying the folder, change it (a moved folder's old
# path, or a copy still naming the original, stops the instance with an error), or delete this file to have it
# written again. synchronous: FULL (SQLite's and Dagster's default) syncs the log at every commit; NORMAL syncs
# it at checkpoints only, cheaper per commit but not faster on the large benchmark's nightly, and a power loss may
# then lose the run history's latest events and pool slot releases (cs_kpis/lib/event_log.py).
event_log_storage:
  module: cs_kpis.lib.event_log
  class: KeptOpenSqliteEventLogStorage
  config:
    base_dir: {base_dir}
    synchronous: FULL
"""


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def state_dir() -> Path:
    """The root of all local state (CS_KPIS_STATE_DIR, default <repo>/.state)."""
    return _path_from_env("CS_KPIS_STATE_DIR", REPO_ROOT / ".state")


def warehouse_path() -> Path:
    """The DuckDB warehouse file (CS_KPIS_WAREHOUSE, default <state>/warehouse/cs_kpis.duckdb)."""
    return _path_from_env("CS_KPIS_WAREHOUSE", state_dir() / "warehouse" / "cs_kpis.duckdb")


def dlt_pipelines_dir() -> Path:
    """dlt's pipelines_dir: local pipeline state and load packages (CS_KPIS_DLT_DIR, default <state>/dlt)."""
    return _path_from_env("CS_KPIS_DLT_DIR", state_dir() / "dlt")


def dagster_home() -> Path:
    """Dagster's instance folder: run history, event logs, schedules (DAGSTER_HOME, default <state>/dagster_home)."""
    return _path_from_env("DAGSTER_HOME", state_dir() / "dagster_home")


def landing_dir() -> Path:
    """The landing folder the source systems hand over.

    In a company profile (CS_KPIS_CONFIG, cs_kpis/config.py) the file's ``landing_dir`` decides; in the
    demo profile CS_KPIS_LANDING_DIR, default <repo>/data/landing.
    """
    from cs_kpis import config  # here: config imports pydantic and yaml, which only this needs

    cfg = config.load()
    if not cfg.is_demo and cfg.landing_dir is not None:
        return Path(cfg.landing_dir)
    return _path_from_env("CS_KPIS_LANDING_DIR", REPO_ROOT / "data" / "landing")


def fx_rates_path() -> Path:
    """The CSV of daily FX rates: the company configuration's ``fx`` (source csv: its path), by default
    ``<landing>/reference/fx_rates.csv``."""
    from cs_kpis import config

    return config.load().fx.rates_file(landing_dir())


def ground_truth_dir() -> Path:
    """The simulator's answers, never read by the pipeline (CS_KPIS_GROUND_TRUTH_DIR, default <repo>/data/ground_truth)."""
    return _path_from_env("CS_KPIS_GROUND_TRUTH_DIR", REPO_ROOT / "data" / "ground_truth")


def demo_size() -> str:
    """The demo company's size preset (CS_KPIS_DEMO_SIZE, default "demo")."""
    return os.environ.get("CS_KPIS_DEMO_SIZE") or "demo"


def demo_seed() -> int:
    """The simulator's random seed (CS_KPIS_DEMO_SEED, default 42)."""
    return int(os.environ.get("CS_KPIS_DEMO_SEED") or 42)


def ensure_dagster_home(path: Path) -> Path:
    """Create the Dagster home folder and its dagster.yaml if missing; an existing yaml is left alone."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML + EVENT_LOG_YAML.format(base_dir=json.dumps(str(path.resolve() / "history" / "runs"))))
    return path


def prepare_state() -> dict[str, Path]:
    """Create the state folders and dagster.yaml, and export the paths to this process's environment.

    Exporting DAGSTER_HOME matters: ``DagsterInstance.get()`` and ``dagster dev`` read it. The other
    variables are exported so that subprocesses (dagster's code server, dlt) see the same paths.
    """
    paths = {
        "CS_KPIS_STATE_DIR": state_dir(),
        "CS_KPIS_WAREHOUSE": warehouse_path(),
        "CS_KPIS_DLT_DIR": dlt_pipelines_dir(),
        "DAGSTER_HOME": dagster_home(),
        "CS_KPIS_LANDING_DIR": landing_dir(),
        "CS_KPIS_GROUND_TRUTH_DIR": ground_truth_dir(),
    }
    paths["CS_KPIS_STATE_DIR"].mkdir(parents=True, exist_ok=True)
    paths["CS_KPIS_WAREHOUSE"].parent.mkdir(parents=True, exist_ok=True)
    paths["CS_KPIS_DLT_DIR"].mkdir(parents=True, exist_ok=True)
    ensure_dagster_home(paths["DAGSTER_HOME"])
    for name, value in paths.items():
        os.environ[name] = str(value)
    return paths


def main() -> int:
    for name, value in prepare_state().items():
        print(f"export {name}={shlex.quote(str(value))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
