"""Which Segment event field carries the workspace (account) id is configurable
(`systems.product.workspace_id_fields`), validated, and reaches the staging SQL only as a column name or a
json_extract_string over a validated key."""

import json

import duckdb
import pytest

from cs_kpis import config
from cs_kpis.defs.staging.assets import STAGING_MODELS
from cs_kpis.lib.sql import build
from cs_kpis.sources.product.settings import TABLE_COLUMNS

MODEL = next(m for m in STAGING_MODELS if m.name == "stg_product__events")


def _config(tmp_path, fields) -> object:
    data = {"profile": "ws-co", "landing_dir": "exports", "product": config.DEMO_PRODUCT.as_dict(),
            "systems": {"product": {"mode": "files", "workspace_id_fields": fields}}}
    path = tmp_path / "company.yaml"
    path.write_text(json.dumps(data))
    return path


def _events(con) -> None:
    con.execute("create schema raw")
    con.execute("create table raw.product__events (" + ", ".join(f'"{c}" {t}' for c, t in TABLE_COLUMNS.items()) + ")")
    rows = [  # message_id, type, group_id, context_group_id, traits
        ("m1", "track", None, "ws_ctx", None),
        ("m2", "group", "ws_grp", None, None),
        ("m3", "identify", None, None, json.dumps({"account": {"ws_id": "ws_trait"}})),
    ]
    for mid, kind, group, ctx, traits in rows:
        con.execute("insert into raw.product__events (message_id, type, group_id, context_group_id, traits, "
                    "timestamp, received_at, _received_day) values (?, ?, ?, ?, ?, now(), now(), current_date)",
                    [mid, kind, group, ctx, traits])


def _workspaces(con) -> dict:
    return dict(con.execute("select message_id, workspace_id from staging.stg_product__events").fetchall())


def test_the_demo_reads_context_group_id_then_group_id(monkeypatch):
    monkeypatch.delenv(config.ENV_CONFIG, raising=False)
    con = duckdb.connect()
    _events(con)
    build(con, MODEL)
    assert _workspaces(con) == {"m1": "ws_ctx", "m2": "ws_grp", "m3": None}


def test_a_trait_path_then_group_id(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_CONFIG, str(_config(tmp_path, ["traits.account.ws_id", "groupId"])))
    con = duckdb.connect()
    _events(con)
    build(con, MODEL)
    assert _workspaces(con) == {"m1": None, "m2": "ws_grp", "m3": "ws_trait"}


@pytest.mark.parametrize("field", ["context.traits.ws", "userId", "traits.", "properties.a'b",
                                   "traits.ws) from raw.x; --", "groupId; drop table x"])
def test_a_bad_field_names_the_key(tmp_path, field):
    path = _config(tmp_path, ["groupId", field])
    with pytest.raises(config.ConfigError, match=rf"{path}: systems\.product\.workspace_id_fields: Value error"):
        config.load_file(path)


def test_at_least_one_field(tmp_path):
    path = _config(tmp_path, [])
    with pytest.raises(config.ConfigError, match=r"systems\.product\.workspace_id_fields"):
        config.load_file(path)
