"""Running a source until it has caught up with the landing folder, and reading its accounting.

scd2 resources load one extract day per dlt load (the day is the validity boundary), so a source can
need several ``pipeline.run`` calls to catch up; each resource says in its state how many days are left.
"""

from collections.abc import Callable
from typing import Any

from cs_kpis.sources.common.accounting import Accounting


def resource_states(pipeline: Any, source_name: str) -> dict[str, dict[str, Any]]:
    """Resource name -> its committed dlt state, as of the pipeline's last run."""
    sources = pipeline.state.get("sources") or {}
    return (sources.get(source_name) or {}).get("resources") or {}


def pending_resources(pipeline: Any, source: Any) -> list[str]:
    """The selected resources of ``source`` that still have extract days to load."""
    states = resource_states(pipeline, source.name)
    return [name for name in source.selected_resources if (states.get(name) or {}).get("pending_days")]


def last_run_accounting(pipeline: Any, source_name: str, resource: str) -> Accounting:
    """The accounting the resource recorded for the pipeline's last run."""
    return Accounting.from_dict((resource_states(pipeline, source_name).get(resource) or {}).get("last_run"))


def run_until_caught_up(
    pipeline: Any,
    source: Any,
    *,
    run: Callable[[Any], Any] | None = None,
    max_loads: int = 10_000,
) -> tuple[list[Any], dict[str, Accounting]]:
    """Run ``source`` until no selected resource has pending extract days.

    Returns the load infos and, per resource, the accounting summed over the loads. ``run`` replaces
    ``pipeline.run`` (to pass options); every load raises on failed jobs.
    """
    run = run or pipeline.run
    load_infos: list[Any] = []
    totals: dict[str, Accounting] = {name: Accounting() for name in source.selected_resources}
    for _ in range(max_loads):
        load_info = run(source)
        load_info.raise_on_failed_jobs()
        load_infos.append(load_info)
        for name, total in totals.items():
            totals[name] = total.add(last_run_accounting(pipeline, source.name, name))
        if not pending_resources(pipeline, source):
            break
    return load_infos, totals
