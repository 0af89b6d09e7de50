"""Asset keys have one home: the module that builds an asset declares its key, and every other module imports it.

- A SQL model's key is its schema and file name (cs_kpis/lib/sql.py); a layer exposes ``key(name)`` in its
  assets module (``marts.key("mrr_monthly")``), which fails at import for a name the layer does not build.
- An asset built in Python has its key written as a literal once, in the module whose function builds it
  (or in its layer's ``keys.py``: landing/keys.py); checks, jobs and other layers import that constant.
- Every key a module holds, every dependency of an asset and every table a check names is an asset of the
  definitions: a misspelt key cannot become a dependency on nothing (Dagster would accept it silently).
"""

import ast
import importlib
from pathlib import Path

import dagster as dg
import pytest

from cs_kpis_tests.test_definitions import defs  # noqa: F401 (the module-scoped fixture: the demo profile)

PACKAGE = Path(__file__).resolve().parents[1] / "cs_kpis"
RULE_MODULES = {"cs_kpis.lib.sql"}
"""where keys are made from names (raw_key, asset_key_for_table, model_key, SqlModel.key): the one rule"""
PROFILE_KEYS = {dg.AssetKey(["landing", "exports"])}
"""keys of assets that exist in the other profile only (a company's exports instead of the demo company)"""


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def key_literals(source: str, names: dict) -> list[tuple[int, tuple[str, ...] | None]]:
    """(line, key) of every key written as a list or tuple in ``source``: ``AssetKey([...])``,
    ``AssetSpec([...])``, ``asset_key=[...]``/``key=[...]``; ``key`` is None when a part is not a string
    constant or a module-level string (``names``), i.e. the key is computed from variables."""
    def parts(node) -> tuple[str, ...] | None:
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                out.append(elt.value)
            elif isinstance(elt, ast.Name) and isinstance(names.get(elt.id), str):
                out.append(names[elt.id])
            else:
                return None
        return tuple(out)

    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        args = list(node.args[:1]) if func in ("AssetKey", "AssetSpec") else []
        args += [kw.value for kw in node.keywords if kw.arg in ("asset_key", "key")]
        found += [(node.lineno, parts(a)) for a in args if isinstance(a, (ast.List, ast.Tuple))]
    return found


def builders(loaded: dg.Definitions) -> dict[dg.AssetKey, str]:
    """{asset key: the module of the function that builds it}."""
    out = {}
    for assets_def in loaded.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            module = assets_def.op.compute_fn.decorated_fn.__module__
            out.update({key: module for key in assets_def.keys})
    return out


def retyped_keys(path: Path, built_by: dict[dg.AssetKey, str]) -> list[str]:
    """The keys ``path`` writes although another module builds them (or that it computes outside the rule)."""
    module = module_name(path)
    if module in RULE_MODULES:
        return []
    source = path.read_text()
    if not key_literals(source, {}):
        return []  # nothing to resolve: no need to import it (a __main__ would run)
    names = vars(importlib.import_module(module))
    bad = []
    for line, parts in key_literals(source, names):
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        if parts is None:
            bad.append(f"{where}: a key computed from names (use cs_kpis.lib.sql's raw_key / model_key)")
            continue
        key = dg.AssetKey(list(parts))
        owner = built_by.get(key)
        layer_keys = module.endswith(".keys") and owner is not None and \
            owner.rsplit(".", 1)[0] == module.rsplit(".", 1)[0]
        if owner != module and not layer_keys and key not in PROFILE_KEYS:
            bad.append(f"{where}: {key.to_user_string()} is built by {owner or 'no asset'}: import its key")
    return bad


def test_a_key_is_written_only_where_its_asset_is_built(defs):  # noqa: F811
    built_by = builders(defs)
    bad = [msg for path in sorted(PACKAGE.rglob("*.py")) for msg in retyped_keys(path, built_by)]
    assert not bad, "\n".join(bad)


def test_a_retyped_key_is_found(defs, tmp_path):  # noqa: F811
    """The scan above can fail: a module that retypes another module's key, or builds one from variables."""
    source = ('import dagster as dg\nS = "marts"\nA = dg.AssetKey(["marts", "mrr_monthly"])\n'
              'B = dg.AssetKey([S, "dim_day"])\nC = dg.AssetSpec(["kpis", name])\nD = dg.AssetKey(["x", "y"])\n')
    found = key_literals(source, {"S": "marts"})
    assert found == [(3, ("marts", "mrr_monthly")), (4, ("marts", "dim_day")), (5, None), (6, ("x", "y"))]
    built_by = builders(defs)
    assert built_by[dg.AssetKey(["marts", "mrr_monthly"])] == "cs_kpis.lib.sql"
    assert built_by[dg.AssetKey(["marts", "dim_day"])] == "cs_kpis.defs.marts.assets"
    assert built_by[dg.AssetKey(["kpis", "health_scores"])] == "cs_kpis.defs.health.assets"


def test_a_layer_key_names_only_what_the_layer_builds():
    from cs_kpis.defs.health import assets as health
    from cs_kpis.defs.marts import assets as marts

    assert marts.key("mrr_monthly") == dg.AssetKey(["marts", "mrr_monthly"])
    assert marts.key("dim_day") == marts.DIM_DAY == dg.AssetKey(["marts", "dim_day"])
    assert health.INDICATORS == dg.AssetKey(["kpis", "account_indicators_daily"])
    with pytest.raises(ValueError, match="marts.mrr_monthy"):
        marts.key("mrr_monthy")
    with pytest.raises(ValueError, match="marts.revenue_monthly"):
        marts.key("revenue_monthly")  # a kpis table: kpis.assets.key names it


def _held_keys(value) -> list[dg.AssetKey]:
    if isinstance(value, dg.AssetKey):
        return [value]
    if type(value) in (list, tuple, set, frozenset):  # not the NamedTuples dagster records are
        return [k for v in value for k in _held_keys(v)]
    return []


def test_every_key_a_module_holds_or_a_check_names_is_an_asset(defs):  # noqa: F811
    assets = set(defs.resolve_all_asset_keys())
    missing = []
    for path in sorted((PACKAGE / "defs").rglob("*.py")) + sorted((PACKAGE / "lib").rglob("*.py")):
        if path.stem == "__main__":
            continue
        module = importlib.import_module(module_name(path))
        for name, value in vars(module).items():
            missing += [f"{module.__name__}.{name}: {k.to_user_string()}" for k in _held_keys(value)
                        if k not in assets and k not in PROFILE_KEYS]
    for spec in defs.resolve_all_asset_specs():
        missing += [f"{spec.key.to_user_string()} depends on {d.asset_key.to_user_string()}"
                    for d in spec.deps if d.asset_key not in assets]
    graph = defs.get_repository_def().asset_graph
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        for key in [spec.asset_key, *(d.asset_key for d in spec.additional_deps)]:
            if key not in assets:
                missing.append(f"check {check_key.name} names {key.to_user_string()}")
    assert not missing, "\n".join(missing)
