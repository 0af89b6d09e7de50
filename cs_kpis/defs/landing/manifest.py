"""Reading and judging the landing folder's _manifest.json (layout in docs/LANDING.md). No Dagster here."""

import hashlib
import json
import re
from pathlib import Path
from typing import Any

MANIFEST_NAME = "_manifest.json"


def manifest_path(landing: Path) -> Path:
    return Path(landing) / MANIFEST_NAME


class ManifestError(ValueError):
    """The landing folder's _manifest.json exists but cannot be used; the message names the file."""


def read_manifest(landing: Path) -> dict[str, Any] | None:
    """The parsed manifest, or None when the landing folder has none (not generated, or not complete).

    A byte-order mark and CRLF line ends are accepted. A manifest that is not a JSON object raises
    :class:`ManifestError` naming the file; callers that must not fail (the code location, the check)
    use :func:`try_read_manifest`.
    """
    path = manifest_path(landing)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def try_read_manifest(landing: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest or None, the problem reading it or None): never raises."""
    try:
        return read_manifest(landing), None
    except (ManifestError, OSError) as exc:
        return None, str(exc)


def manifest_fingerprint(manifest: dict[str, Any]) -> str:
    """A short stable hash of the manifest: it changes whenever the landing folder's content does."""
    canonical = json.dumps(manifest, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def counts_markdown(counts: dict[str, int]) -> str:
    lines = ["| entity | rows |", "|---|---:|"]
    lines += [f"| {entity} | {rows:,} |" for entity, rows in sorted(counts.items())]
    return "\n".join(lines)


# what an export must hold for each system in files mode, on its first extract day (docs/LANDING.md)
SYSTEM_ENTITIES: dict[str, tuple[str, ...]] = {
    "crm": ("crm/Account", "crm/User", "crm/Contact", "crm/Opportunity"),
    "billing": ("billing/customers", "billing/products", "billing/prices", "billing/coupons",
                "billing/subscriptions", "billing/invoices", "billing/events"),
    "product": ("product/events",),
    "support": ("support/organizations", "support/tickets", "support/ticket_metrics",
                "support/satisfaction_ratings"),
    "nps": ("nps/survey_responses",),
}
FX_RATES = "reference/fx_rates.csv"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

PROBLEM_HELP = {
    "missing_folder": "the landing folder does not exist",
    "malformed_manifest": "_manifest.json is not valid (fix the exporter's manifest)",
    "missing_manifest": "no _manifest.json: the export is absent or still being written (the exporter "
                        "writes it last)",
    "bad_extract_days": "_manifest.json needs extract_days: a non-empty list of YYYY-MM-DD days",
    "missing_extract_days": "an extract day listed in _manifest.json has no folder",
    "missing_snapshot": "an entity has no part file on the first extract day (the full snapshot)",
    "missing_fx_rates": "the FX rates CSV is missing (billing converts currencies with it; fx in the company "
                        f"configuration, default {FX_RATES})",
    "zero_counts": "_manifest.json counts 0 rows for an entity",
    "missing_entities": "_manifest.json counts an entity with nothing on disk",
}


def manifest_problems(
    landing: Path,
    manifest: dict[str, Any] | None,
    *,
    systems: list[str] | None = None,
    manifest_error: str | None = None,
    fx_rates: Path | None = None,
) -> dict[str, list[str]]:
    """What is wrong with a landing folder, per kind of problem; all lists empty means complete.

    ``systems`` are the systems in files mode (default: all five); only their entities are required.
    The kinds are the keys of :data:`PROBLEM_HELP`:

    - ``missing_folder``, ``missing_manifest``, ``malformed_manifest``: the folder, its _manifest.json.
    - ``bad_extract_days``: extract_days absent, empty or not YYYY-MM-DD days (the only required key).
    - ``missing_extract_days``: an extract day with no ``<system>/<entity>/<day>/`` folder for any
      entity (product events are foldered by received day, so they do not count).
    - ``missing_snapshot``: an entity of an enabled system without a part file on the first extract
      day (product events: no received-day folder with a part on or before it).
    - ``missing_fx_rates``: billing is enabled and the FX rates file is missing (``fx_rates``: the company
      configuration's ``fx`` source; default ``<landing>/reference/fx_rates.csv``).
    - ``zero_counts``, ``missing_entities``: only when the manifest has ``counts`` (the simulator's
      manifest does; an exporter's may): an entity counted 0, or counted with nothing on disk.
    """
    landing = Path(landing)
    systems = list(SYSTEM_ENTITIES) if systems is None else systems
    problems: dict[str, list[str]] = {kind: [] for kind in PROBLEM_HELP}
    if not landing.is_dir():
        problems["missing_folder"].append(str(landing))
        return problems
    if manifest_error:
        problems["malformed_manifest"].append(manifest_error)
        return problems
    if manifest is None:
        problems["missing_manifest"].append(str(manifest_path(landing)))
        return problems

    days = manifest.get("extract_days")
    if not isinstance(days, list) or not days or not all(_DAY.match(str(d)) for d in days):
        problems["bad_extract_days"].append(f"extract_days: {days!r}"[:200])
        return problems
    days = sorted(str(d) for d in days)

    counts = manifest.get("counts")
    if isinstance(counts, dict):
        # a system turned off (or in api mode) is not judged by what the manifest counts for it
        counts = {e: n for e, n in counts.items() if e.split("/")[0] in systems or e.split("/")[0] not in SYSTEM_ENTITIES}
    if isinstance(counts, dict) and counts:
        problems["zero_counts"] = sorted(entity for entity, rows in counts.items() if not rows)
        # an entity is a folder (crm/Account) or a single file (reference/fx_rates.csv)
        problems["missing_entities"] = sorted(entity for entity in counts if not any(landing.glob(f"{entity}*")))
    elif counts is not None and not isinstance(counts, dict):
        problems["zero_counts"].append("counts: not an object of entity -> rows")

    day_folders = {
        p.name for p in landing.glob("*/*/*") if p.is_dir() and not p.parent.match("product/events")
    }
    problems["missing_extract_days"] = [day for day in days if day not in day_folders]

    first = days[0]
    for system in systems:
        for entity in SYSTEM_ENTITIES.get(system, ()):
            if entity == "product/events":
                received = [p for p in (landing / entity).glob("*") if p.is_dir() and p.name <= days[-1]]
                if not any(any(p.glob("part-*.jsonl")) for p in received):
                    problems["missing_snapshot"].append(f"{entity}/<received_day>/part-*.jsonl")
            elif not any((landing / entity / first).glob("part-*.json")):
                problems["missing_snapshot"].append(f"{entity}/{first}/part-*.json")
    fx = Path(fx_rates) if fx_rates else landing / FX_RATES
    if "billing" in systems and not fx.is_file():
        problems["missing_fx_rates"].append(str(fx))
    return problems


def problems_text(landing: Path, problems: dict[str, list[str]], limit: int = 8) -> str | None:
    """One line naming the folder and each kind of problem with examples; None when there is none."""
    parts = []
    for kind, found in problems.items():
        if found:
            more = f" (+{len(found) - limit} more)" if len(found) > limit else ""
            parts.append(f"{PROBLEM_HELP.get(kind, kind)}: {', '.join(found[:limit])}{more}")
    return f"landing folder {landing}: " + "; ".join(parts) if parts else None
