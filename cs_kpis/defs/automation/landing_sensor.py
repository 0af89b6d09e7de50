"""New exports arriving trigger the pipeline: a sensor on the landing folder (files mode).

`new_extract_day_sensor` looks at the landing folder every 2 minutes. An extract day counts as arrived once
the folder is **complete** as docs/LANDING.md defines it ("For exporters"): the exporter wrote
``_manifest.json`` last, the manifest lists the day in ``extract_days``, and ``manifest_problems`` finds
nothing missing for the systems in files mode (a folder for every listed day, the snapshot's parts,
``reference/fx_rates.csv`` when billing is on). A day still being written is not listed by the manifest yet
(or the manifest is absent), so it does not trigger; the next tick after the exporter finishes does.

For the newest complete extract day not seen yet it asks for one ``nightly`` run: run key
``extract-day-<day>``, tag ``cs_kpis/extract_day``. Nothing runs twice for the same day:

- the cursor holds the newest day already requested; a day not newer than it is skipped;
- the run key is the day, so Dagster's daemon drops a second request with the same key;
- a run of the instance already tagged with the day (the cursor reset by hand, say) also skips it.

Several days arriving between two ticks make one run (the nightly job loads every extract day in the folder).
The nightly schedule stays as the fallback (an export that never completes still gets the 02:00 run, whose
blocking landing check then names what is missing). Like every schedule and sensor of the project it starts
stopped unless automation is on (switch.py). With no system in files mode (all API or off) it skips.
"""

import json

import dagster as dg

from cs_kpis import config
from cs_kpis.defs.automation import switch
from cs_kpis.defs.automation.jobs import nightly_job
from cs_kpis.defs.config_resources import LandingResource
from cs_kpis.defs.landing.manifest import manifest_problems, problems_text, try_read_manifest

EXTRACT_DAY_TAG = "cs_kpis/extract_day"


def run_key(day: str) -> str:
    return f"extract-day-{day}"


def newest_complete_day(landing, systems: list[str], fx_rates=None) -> tuple[str | None, str | None]:
    """(the newest extract day of a complete landing folder, None) or (None, why the folder is not complete)."""
    manifest, error = try_read_manifest(landing) if landing.is_dir() else (None, None)
    problem = problems_text(landing, manifest_problems(landing, manifest, systems=systems, manifest_error=error,
                                                                fx_rates=fx_rates))
    if problem:
        return None, problem
    return max(str(day) for day in manifest["extract_days"]), None


def _already_run(instance: dg.DagsterInstance, day: str) -> bool:
    return bool(instance.get_run_ids(filters=dg.RunsFilter(tags={EXTRACT_DAY_TAG: day}), limit=1))


def extract_day_request(context: dg.SensorEvaluationContext, cfg: config.CompanyConfig,
                        landing, fx_rates=None) -> dg.RunRequest | dg.SkipReason:
    systems = cfg.enabled("files")
    if not systems:
        return dg.SkipReason("no system is in files mode: nothing arrives in a landing folder")
    seen = json.loads(context.cursor)["day"] if context.cursor else None
    day, problem = newest_complete_day(landing, systems, fx_rates or cfg.fx.rates_file(landing))
    if day is None:
        return dg.SkipReason(f"waiting for a complete export: {problem}")
    if seen is not None and day <= seen:
        return dg.SkipReason(f"extract day {day} already requested (newest complete day in {landing})")
    context.update_cursor(json.dumps({"day": day}))
    if _already_run(context.instance, day):
        return dg.SkipReason(f"extract day {day} already has a run (tag {EXTRACT_DAY_TAG})")
    return dg.RunRequest(run_key=run_key(day), tags={EXTRACT_DAY_TAG: day})


# the job is named, not passed (as in sensors.py: passing it rebinds it and printed a BetaWarning)
@dg.sensor(
    name="new_extract_day_sensor", job_name=nightly_job.name, minimum_interval_seconds=120,
    default_status=switch.sensor_status(),
    description=("A new complete extract day in the landing folder (files mode; _manifest.json lists it and "
                 "nothing is missing, docs/LANDING.md) -> one nightly run for it (run key extract-day-<day>). "
                 "The nightly schedule stays as the fallback."),
)
def new_extract_day_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    return extract_day_request(context, config.load(), landing.landing, landing.fx_rates)
