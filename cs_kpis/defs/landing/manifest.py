"""Reading and judging the landing folder's _manifest.json (layout in docs/LANDING.md). No Dagster here."""

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "_manifest.json"


def manifest_path(landing: Path) -> Path:
    return Path(landing) / MANIFEST_NAME


def read_manifest(landing: Path) -> dict[str, Any] | None:
    """The parsed manifest, or None when the landing folder has none (not generated, or not complete)."""
    path = manifest_path(landing)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def manifest_fingerprint(manifest: dict[str, Any]) -> str:
    """A short stable hash of the manifest: it changes whenever the landing folder's content does."""
    canonical = json.dumps(manifest, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def counts_markdown(counts: dict[str, int]) -> str:
    lines = ["| entity | rows |", "|---|---:|"]
    lines += [f"| {entity} | {rows:,} |" for entity, rows in sorted(counts.items())]
    return "\n".join(lines)


def manifest_problems(landing: Path, manifest: dict[str, Any] | None) -> dict[str, list[str]]:
    """What is wrong with a landing folder, per kind of problem; all lists empty means complete.

    - ``missing_manifest``: no _manifest.json.
    - ``missing_extract_days``: an extract day in the manifest with no ``<system>/<entity>/<day>/``
      folder for any entity (product events are foldered by received day, so they do not count).
    - ``zero_counts``: an entity counted 0 rows, or no counts at all.
    - ``missing_entities``: an entity in the counts with nothing on disk under ``<system>/<entity>``.
    """
    landing = Path(landing)
    problems: dict[str, list[str]] = {
        "missing_manifest": [],
        "missing_extract_days": [],
        "zero_counts": [],
        "missing_entities": [],
    }
    if manifest is None:
        problems["missing_manifest"].append(str(manifest_path(landing)))
        return problems

    counts: dict[str, int] = manifest.get("counts") or {}
    if not counts:
        problems["zero_counts"].append("<no counts in manifest>")
    problems["zero_counts"] += sorted(entity for entity, rows in counts.items() if not rows)
    # an entity is a folder (crm/Account) or a single file (reference/fx_rates.csv)
    problems["missing_entities"] = sorted(entity for entity in counts if not any(landing.glob(f"{entity}*")))

    day_folders = {
        p.name for p in landing.glob("*/*/*") if p.is_dir() and not p.parent.match("product/events")
    }
    problems["missing_extract_days"] = [
        str(day) for day in manifest.get("extract_days") or [] if str(day) not in day_folders
    ]
    if not manifest.get("extract_days"):
        problems["missing_extract_days"].append("<no extract_days in manifest>")
    return problems
