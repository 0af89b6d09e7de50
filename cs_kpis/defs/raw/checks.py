"""Checks on every raw asset, read from its latest materialization's row accounting."""

from collections.abc import Sequence

import dagster as dg

QUARANTINE_SHARE_CHECK = "raw_quarantine_share_below_threshold"
ROW_ACCOUNTING_CHECK = "raw_row_accounting_holds"
DEFAULT_MAX_QUARANTINE_SHARE = 0.01


class QuarantineShareConfig(dg.Config):
    max_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    """fail when rows_quarantined / rows_read of the latest load exceeds this"""


def _latest_metadata(context: dg.AssetCheckExecutionContext, key: dg.AssetKey) -> dict:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return {}
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def quarantine_share_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """Fails when more than ``max_share`` of the rows read by the latest load were quarantined."""

    @dg.asset_check(asset=key, name=QUARANTINE_SHARE_CHECK, description="quarantined/read of the latest load is below the threshold (default 1%)")
    def _check(context: dg.AssetCheckExecutionContext, config: QuarantineShareConfig) -> dg.AssetCheckResult:
        meta = _latest_metadata(context, key)
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

    @dg.asset_check(asset=key, name=ROW_ACCOUNTING_CHECK, blocking=True, description="rows read = loaded + quarantined + deduplicated")
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        meta = _latest_metadata(context, key)
        counts = {k: int(meta.get(k) or 0) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_deduplicated")}
        accounted = counts["rows_loaded"] + counts["rows_quarantined"] + counts["rows_deduplicated"]
        return dg.AssetCheckResult(
            passed=counts["rows_read"] == accounted,
            metadata={**counts, "unaccounted": counts["rows_read"] - accounted},
        )

    return _check


def build_raw_checks(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """Both checks for every asset key of the raw multi-assets."""
    checks = []
    for assets_def in assets:
        for key in assets_def.keys:
            checks += [quarantine_share_check(key), row_accounting_check(key)]
    return checks
