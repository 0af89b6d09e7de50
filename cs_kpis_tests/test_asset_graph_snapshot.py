"""The asset graph as a reviewed snapshot: keys, groups, dependencies and checks.

A renamed or re-grouped table, a dropped dependency or a lost check changes ``asset_graph.snapshot.json``,
so it shows up in review as a diff of that file instead of going unnoticed (table names are a contract
analysts query by name). After an intended change, rewrite the snapshot and commit it with the change:

    CS_KPIS_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest cs_kpis_tests/test_asset_graph_snapshot.py
"""

import json
import os
from pathlib import Path

import dagster as dg

from cs_kpis_tests.test_definitions import defs  # noqa: F401 (the module-scoped fixture: the demo profile)

SNAPSHOT = Path(__file__).with_name("asset_graph.snapshot.json")


def graph(loaded: dg.Definitions) -> dict:
    """{asset key: {group, deps, checks (name and whether blocking)}}, sorted, as plain JSON."""
    repo = loaded.get_repository_def()
    asset_graph = repo.asset_graph
    checks: dict[str, list[str]] = {}
    for check_key in asset_graph.asset_check_keys:
        node = asset_graph.get_check_spec(check_key)
        label = check_key.name + (" (blocking)" if node.blocking else "")
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(label)
    out = {}
    for spec in loaded.resolve_all_asset_specs():
        key = spec.key.to_user_string()
        out[key] = {
            "group": spec.group_name,
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "checks": sorted(checks.get(key, [])),
        }
    return dict(sorted(out.items()))


def test_asset_graph_matches_the_reviewed_snapshot(defs):  # noqa: F811
    current = graph(defs)
    text = json.dumps(current, indent=1, sort_keys=True) + "\n"
    if os.environ.get("CS_KPIS_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with CS_KPIS_UPDATE_SNAPSHOT=1 to write {SNAPSHOT.name}"
    reviewed = json.loads(SNAPSHOT.read_text())
    added = sorted(set(current) - set(reviewed))
    removed = sorted(set(reviewed) - set(current))
    changed = sorted(k for k in set(current) & set(reviewed) if current[k] != reviewed[k])
    assert not (added or removed or changed), (
        f"the asset graph differs from {SNAPSHOT.name} (review, then rewrite it with CS_KPIS_UPDATE_SNAPSHOT=1): "
        f"added {added}, removed {removed}, changed "
        + "; ".join(f"{k}: {reviewed[k]} -> {current[k]}" for k in changed)
    )



# README "Project layout": a key starts with the schema the table is in, the group is the defining folder;
# these are every (key prefix, group) pair that rule allows (xref/, health/ and reverse_etl/ write another
# layer's schema)
KEY_PREFIX_GROUPS = {
    ("landing", "landing"), ("raw", "raw"), ("staging", "staging"), ("marts", "marts"), ("kpis", "kpis"),
    ("kpis", "health"), ("alerts", "alerts"), ("alerts", "reverse_etl"), ("reports", "reports"),
}


def test_key_prefix_and_group_follow_the_readme_rule(defs):  # noqa: F811
    pairs = {(key.split("/")[0], node["group"]) for key, node in graph(defs).items()}
    assert pairs <= KEY_PREFIX_GROUPS, sorted(pairs - KEY_PREFIX_GROUPS)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for folder in ("xref", "health", "reverse_etl"):
        assert f"| `{folder}/` |" in readme, folder
