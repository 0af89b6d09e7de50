"""Checks on every raw asset: the row accounting of its latest materialization, and (files mode) the
landing folder against its manifest."""

import json
import re
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import duckdb

from cs_kpis.lib.checks import CheckInputs, evaluates
from cs_kpis.lib.sql import WAREHOUSE_POOL

QUARANTINE_SHARE_CHECK = "raw_quarantine_share_below_threshold"
ROW_ACCOUNTING_CHECK = "raw_row_accounting_holds"
DEFAULT_MAX_QUARANTINE_SHARE = 0.01


class QuarantineShareConfig(dg.Config):
    max_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    """fail when rows_quarantined / rows_read of the latest load exceeds this"""


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def quarantine_share_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """Fails when more than ``max_share`` of the rows read by the latest load were quarantined."""

    @dg.asset_check(asset=key, name=QUARANTINE_SHARE_CHECK, description="quarantined/read of the latest load is below the threshold (default 1%)")
    def _check(context: dg.AssetCheckExecutionContext, config: QuarantineShareConfig) -> dg.AssetCheckResult:
        meta = _latest_metadata(context.instance, key)
        read, quarantined = int(meta.get("rows_read") or 0), int(meta.get("rows_quarantined") or 0)
        share = quarantined / read if read else 0.0
        return dg.AssetCheckResult(
            passed=share <= config.max_share,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows_read": read, "rows_quarantined": quarantined, "share": share, "max_share": config.max_share},
            description=f"{quarantined} of {read} rows quarantined ({share:.2%}); see raw._quarantine",
        )

    return _check


def row_accounting_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """Fails when rows read != loaded + quarantined + deduplicated for the latest load."""

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        meta = _latest_metadata(inputs.instance, key)
        counts = {k: int(meta.get(k) or 0) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_deduplicated")}
        accounted = counts["rows_loaded"] + counts["rows_quarantined"] + counts["rows_deduplicated"]
        return dg.AssetCheckResult(
            passed=counts["rows_read"] == accounted,
            metadata={**counts, "unaccounted": counts["rows_read"] - accounted},
        )

    @dg.asset_check(asset=key, name=ROW_ACCOUNTING_CHECK, blocking=True, description="rows read = loaded + quarantined + deduplicated")
    @evaluates(evaluate)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return evaluate(CheckInputs({}, context.instance))

    return _check


MANIFEST_COUNTS_CHECK = "raw_rows_match_manifest_counts"
UNRECOGNIZED_FILES_CHECK = "raw_landing_files_all_recognized"
SAMPLE = 20
"""names listed in a check's description, at most"""

CRM_FOLDERS = {"accounts": "Account", "users": "User", "contacts": "Contact", "opportunities": "Opportunity",
               "account_history": "AccountHistory"}
"""crm resource -> Salesforce object folder (as cs_kpis.sources.crm.settings.FOLDERS)"""
NO_MANIFEST_COUNT = {("billing", "subscription_items"), ("billing", "invoice_lines"), ("billing", "fx_rates")}
"""children read their parent's files; fx rates are reference/fx_rates.csv"""
_PART = re.compile(r"part-\d{5}\.json")
_EVENTS_PART = re.compile(r"part-\d{5}\.jsonl")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def landing_folder(system: str, entity: str) -> str | None:
    """``<system>/<folder>`` of an asset in the landing folder and the manifest's ``counts``; None for the
    assets without one of their own."""
    if (system, entity) in NO_MANIFEST_COUNT:
        return None
    return f"{system}/{CRM_FOLDERS.get(entity, entity) if system == 'crm' else entity}"


def _read_manifest(landing_dir: Path) -> dict:
    return json.loads((landing_dir / "_manifest.json").read_text(encoding="utf-8-sig"))


def unrecognized_files(landing_dir: Path, folder: str, extract_days: list[str] | None) -> list[str]:
    """Files and folders under ``<landing>/<folder>`` that the source skips: a name that matches no part
    pattern (``<YYYY-MM-DD>/part-00001.json``, ``.jsonl`` for events), or an extract-day folder the
    manifest does not list (entities only: events are filed by received day)."""
    root = landing_dir / folder
    if not root.is_dir():
        return []
    events = folder == "product/events"
    part = _EVENTS_PART if events else _PART
    days = set(extract_days or [])
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        parts = relative.parts
        if path.is_dir():
            if len(parts) == 1 and (not _DAY.fullmatch(parts[0]) or (not events and days and parts[0] not in days)):
                found.append(f"{folder}/{relative}/")
            continue
        if len(parts) != 2 or not _DAY.fullmatch(parts[0]) or not part.fullmatch(parts[1]):
            found.append(f"{folder}/{relative}")
    return found


def unrecognized_files_check(key: dg.AssetKey, landing_dir: Path) -> dg.AssetChecksDefinition:
    """Fails when the asset's landing folder holds a file or folder the source skips without reading it."""
    system, entity = key.path[1], key.path[2]
    folder = landing_folder(system, entity)

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        try:
            days = _read_manifest(landing_dir).get("extract_days")
        except (OSError, ValueError):
            days = None
        found = unrecognized_files(landing_dir, folder, days)
        return dg.AssetCheckResult(
            passed=not found,
            metadata={"unrecognized": len(found), "files": dg.MetadataValue.json(found[:100])},
            description=(f"{len(found)} file(s) in {folder} are not read: " + ", ".join(found[:SAMPLE])) if found
            else f"every file in {folder} is a part",
        )

    @dg.asset_check(
        asset=key, name=UNRECOGNIZED_FILES_CHECK, blocking=True,
        description="every file in the asset's landing folder is a part the source reads (files the source "
                    "skips, such as a misnamed part or a day folder the manifest does not list, are named)",
    )
    @evaluates(evaluate)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return evaluate(CheckInputs({}, context.instance))

    return _check


def _observed(con: duckdb.DuckDBPyConnection, system: str, entity: str) -> dict[str, int]:
    """What the warehouse holds of one asset: distinct ids loaded (entities) or lines read (events), and
    the records quarantined one by one (whose ids the quarantine rows hold)."""
    tables = {name for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()}
    # one by one: a row with a position holds one record (and its id); a part's unreadable rest has none
    quarantined = con.execute(
        "select count(*) from raw._quarantine where source = ? and entity = ? and position is not null",
        [system, entity]
    ).fetchall()[0][0] if "_quarantine" in tables else 0
    if system == "product":
        status = "and coalesce(status, 'loaded') = 'loaded'" if "_row_accounting" in tables and "status" in {
            name for (name,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' "
                "and table_name = '_row_accounting'").fetchall()} else ""
        read = con.execute(
            f"select coalesce(sum(rows_read), 0) from raw._row_accounting where source = ? and entity = ? {status}",
            [system, entity],
        ).fetchall()[0][0] if "_row_accounting" in tables else 0
        return {"observed": int(read), "quarantined_records": int(quarantined)}
    table = f"{system}__{entity}"
    loaded = con.execute(f"select count(distinct id) from raw.{table}").fetchall()[0][0] if table in tables else 0
    return {"observed": int(loaded), "quarantined_records": int(quarantined)}


def manifest_counts_check(key: dg.AssetKey, landing_dir: Path, warehouse: Path) -> dg.AssetChecksDefinition:
    """Fails when the warehouse holds fewer records than the manifest's ``counts`` say the export has.

    Entities: the export's distinct ids (``counts``) against the distinct ids loaded plus the records
    quarantined one by one; the rest is lost (deleted day folders, the unreadable rest of a cut-off part,
    files the source skips). Events: lines read, over all loads, against the lines the export wrote
    (extra lines, such as injected bad ones, are reported, not failed).
    """
    system, entity = key.path[1], key.path[2]
    folder = landing_folder(system, entity)

    def evaluate(inputs: CheckInputs) -> dg.AssetCheckResult:
        try:
            expected = (_read_manifest(landing_dir).get("counts") or {}).get(folder)
        except (OSError, ValueError) as exc:
            return dg.AssetCheckResult(passed=False, description=f"the manifest cannot be read: {exc}")
        if expected is None:
            return dg.AssetCheckResult(passed=True, description=f"the manifest has no count for {folder}")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            seen = _observed(con, system, entity)
        explained = seen["observed"] + (0 if system == "product" else seen["quarantined_records"])
        missing = int(expected) - explained
        unit = "lines read" if system == "product" else "distinct ids loaded"
        return dg.AssetCheckResult(
            passed=missing <= 0,
            metadata={"manifest_count": int(expected), **seen, "missing": max(missing, 0), "extra": max(-missing, 0)},
            description=(
                f"{missing} of the manifest's {expected} {folder} records are neither loaded nor quarantined "
                f"({unit}: {seen['observed']}, quarantined one by one: {seen['quarantined_records']}); "
                "see raw._quarantine for parts with an unreadable rest and this asset's "
                f"{UNRECOGNIZED_FILES_CHECK} check"
            ) if missing > 0 else f"{folder}: {explained} of the manifest's {expected} records accounted for",
        )

    @dg.asset_check(
        asset=key, name=MANIFEST_COUNTS_CHECK, blocking=True, pool=WAREHOUSE_POOL,
        description="the records loaded or quarantined add up to the manifest's counts for this entity "
                    "(files mode): nothing in the export went missing unnoticed",
    )
    @evaluates(evaluate)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return evaluate(CheckInputs({}, context.instance))

    return _check


def build_raw_checks(
    assets: Sequence[dg.AssetsDefinition], *, landing_dir: Path | None = None, warehouse: Path | None = None
) -> list[dg.AssetChecksDefinition]:
    """The accounting checks for every asset key of the raw multi-assets; with ``landing_dir`` and
    ``warehouse`` (files mode) also the manifest reconciliation and the unrecognized-files check."""
    checks = []
    for assets_def in assets:
        for key in assets_def.keys:
            checks += [quarantine_share_check(key), row_accounting_check(key)]
            # children and fx rates have no landing folder or manifest count of their own: no check that
            # could never fail
            if landing_dir is not None and warehouse is not None and landing_folder(*key.path[1:3]) is not None:
                checks += [manifest_counts_check(key, Path(landing_dir), Path(warehouse)),
                           unrecognized_files_check(key, Path(landing_dir))]
    return checks
