"""DuckDB's own profile of every account range of a full build of a health model: where a range's seconds go.

    CS_KPIS_HEALTH_HISTORY_DAYS=365 .venv/bin/python -m benchmarks.profile_ranges \\
        --warehouse <warehouse with the health inputs> --model kpis.account_indicators_daily \\
        --out bench_out/profile --memory-limit 7.5GB

The model is built in full as its asset builds it (``benchmarks.health.build_health_model``: fingerprint, carry,
account ranges), so the warehouse's table is rebuilt with the same rows. Each range's statement (the first range's
``create or replace table``, the others' ``insert``) runs with DuckDB's JSON profiling on: ``range<n>.json`` in
``--out``, and ``summary.json`` with every range's seconds, its operators' CPU seconds in all, and its most expensive
operators (``--top``), which are printed for the range named by ``--show`` (default: the middle one). Session 31 found
with it that the indicators' running sums took half of each range (BENCHMARKS.md, "Indicators: the running sums over
the days with deltas").
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def operators(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operator of a DuckDB JSON profile (the layout of the DuckDB this project pins), depth first: type, CPU
    seconds (``timing``: summed over threads), rows out, depth, and a short description (the CTE, join condition,
    table or the first window expression)."""
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        info = node.get("extra_info") or {}
        what = next((str(info[k]) for k in ("CTE Name", "Conditions", "Table", "Projections", "Groups") if info.get(k)), "")
        out.append({"type": node["type"], "seconds": node.get("timing") or 0.0, "rows": node.get("intermediate_rows"),
                    "depth": depth, "what": what[:160]})
        for child in node.get("children", []):
            walk(child, depth + 1)

    for top in profile["operator"]:
        walk(top, 0)
    return out


def summarize(profile: dict[str, Any], top: int) -> dict[str, Any]:
    ops = operators(profile)
    return {"operator_seconds": round(sum(o["seconds"] for o in ops), 3),
            "top": [{**o, "seconds": round(o["seconds"], 3)} for o in sorted(ops, key=lambda o: -o["seconds"])[:top]]}


class _Profiled:
    """A DuckDB connection that profiles the statements writing ``table`` (one per account range) into ``out``."""

    def __init__(self, con, table: str, out: Path) -> None:
        self._con, self._table, self._out = con, table, out
        self.ranges: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: Any) -> Any:
        head = sql.lstrip().lower()
        if not head.startswith((f"insert into {self._table} ", f"create or replace table {self._table}")):
            return self._con.execute(sql, *args)
        path = self._out / f"range{len(self.ranges) + 1}.json"
        self._con.execute("pragma enable_profiling = 'json'")
        self._con.execute(f"pragma profiling_output = '{path.as_posix()}'")
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            seconds = time.perf_counter() - started
            self._con.execute("pragma disable_profiling")
            self.ranges.append({"range": len(self.ranges) + 1, "seconds": round(seconds, 3), "profile": path.name})


def profile_build(warehouse: Path, model_table: str, out: Path, memory_limit: str, top: int = 12,
                  chunk_rows: int | None = None) -> dict[str, Any]:
    """Build ``model_table`` in full on ``warehouse``, profiling each range; returns (and writes) the summary."""
    import duckdb

    from benchmarks.health import build_health_model
    from cs_kpis.defs.health.assets import models

    by_table = {m.table: m for m in models}
    if model_table not in by_table:
        raise SystemExit(f"{model_table} is not a health SQL model; one of {', '.join(sorted(by_table))}")
    out.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse), config={"memory_limit": memory_limit}) as con:
        profiled = _Profiled(con, model_table, out)
        started = time.perf_counter()
        build = build_health_model(profiled, by_table[model_table], full_refresh=True, chunk_rows=chunk_rows)
        seconds = time.perf_counter() - started
    for entry in profiled.ranges:
        entry.update(summarize(json.loads((out / entry["profile"]).read_text()), top))
    summary = {"model": model_table, "seconds": round(seconds, 2), "memory_limit": memory_limit,
               "build": {k: str(v) for k, v in build.items()}, "ranges": profiled.ranges}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_ranges", description=__doc__.split("\n\n")[0])
    p.add_argument("--warehouse", type=Path, required=True)
    p.add_argument("--model", default="kpis.account_indicators_daily", help="a health SQL model's table")
    p.add_argument("--out", type=Path, required=True, help="folder for range<n>.json and summary.json")
    p.add_argument("--memory-limit", default="7.5GB", help="DuckDB memory_limit (it also sizes the ranges)")
    p.add_argument("--chunk-rows", type=int, default=None, help="account-days per range instead of the model's sizing")
    p.add_argument("--top", type=int, default=12, help="operators kept per range")
    p.add_argument("--show", type=int, default=None, help="the range whose operators are printed (default: the middle)")
    args = p.parse_args(argv)
    summary = profile_build(args.warehouse, args.model, args.out, args.memory_limit, args.top, args.chunk_rows)
    ranges = summary["ranges"]
    print(f"{summary['model']}: {len(ranges)} range(s), {summary['seconds']} s; per range: "
          + ", ".join(f"{r['seconds']:.2f}" for r in ranges))
    if ranges:
        shown = ranges[(args.show - 1) if args.show else len(ranges) // 2]
        print(f"range {shown['range']}: {shown['seconds']} s, operators' CPU {shown['operator_seconds']} s")
        for o in shown["top"]:
            print(f"  {o['seconds']:8.3f}  {o['type']:<18} rows={o['rows']}  {o['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
