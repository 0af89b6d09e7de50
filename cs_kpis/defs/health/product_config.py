"""kpis.health_product_config's rows: the company configuration's product section as a table."""

import pandas as pd

PRODUCT_SETTINGS = ("key_features", "plan_features", "onboarding_milestones", "value_event", "top_plan")


def product_config_rows(product: dict) -> pd.DataFrame:
    """The configuration's product section as (setting, name, value) rows; every setting must be present."""
    missing = [k for k in PRODUCT_SETTINGS if not product.get(k)]
    if missing:
        raise ValueError(f"product configuration: missing {', '.join(missing)} in the company configuration's "
                         "product section")
    rows = [("key_feature", str(f), None) for f in product["key_features"]]
    rows += [("plan_features", str(p), float(n)) for p, n in product["plan_features"].items()]
    rows += [("onboarding_milestone", str(m), None) for m in product["onboarding_milestones"]]
    rows += [("value_event", str(product["value_event"]), None), ("top_plan", str(product["top_plan"]), None)]
    return pd.DataFrame(rows, columns=["setting", "name", "value"])


def write_frame(con, table: str, df: pd.DataFrame, casts: dict[str, str] | None = None) -> None:
    """Replace ``table`` with the frame's rows; ``casts`` maps columns to SQL types."""
    casts = casts or {}
    cols = ", ".join(f"cast(\"{c}\" as {casts[c]}) as \"{c}\"" if c in casts else f"\"{c}\"" for c in df.columns)
    schema = table.split(".")[0]
    con.execute(f"create schema if not exists {schema}")
    con.register("_health_frame", df)
    try:
        con.execute(f"create or replace table {table} as select {cols} from _health_frame")
    finally:
        con.unregister("_health_frame")
