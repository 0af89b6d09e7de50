"""Shape rules of the code itself, read from its syntax trees (no imports, no warehouse).

- A module defines each top-level name once: a second ``TEXT_FIELDS = ...`` silently replaces the first
  (a merge did exactly that to the CRM settings, and the optional AccountHistory table lost its columns).
- No file imports a private (``_``-prefixed) name from another module or library: what other modules use
  is public, so a reader can trust that a ``_name`` is local (issue: one shape for every layer).
"""

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY_FILES = sorted(p for d in ("cs_kpis", "cs_kpis_tests", "benchmarks") for p in (ROOT / d).rglob("*.py"))


def _top_level_names(tree: ast.Module) -> Counter:
    """How often each constant (UPPER_CASE), function and class is defined at the top of a module;
    lower-case module variables may be rebound on purpose and are not counted."""
    names = Counter()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper())
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
              and node.target.id.isupper()):
            names[node.target.id] += 1
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] += 1
    return names


def test_there_are_files_to_read():
    assert len(PY_FILES) > 100


def test_no_module_defines_a_constant_function_or_class_twice():
    twice = {}
    for path in PY_FILES:
        names = _top_level_names(ast.parse(path.read_text()))
        dup = sorted(n for n, c in names.items() if c > 1)
        if dup:
            twice[str(path.relative_to(ROOT))] = dup
    assert not twice, twice


def test_no_file_imports_a_private_name():
    found = []
    for path in PY_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found += [f"{path.relative_to(ROOT)}: from {node.module} import {a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found


def test_the_rules_catch_what_they_name():
    tree = ast.parse("TEXT_FIELDS = {}\nx = 1\nx = 2\nTEXT_FIELDS = {'a': ()}\ndef f(): pass\ndef f(): pass\n")
    assert {n: c for n, c in _top_level_names(tree).items() if c > 1} == {"TEXT_FIELDS": 2, "f": 2}
    imports = [n for n in ast.walk(ast.parse("from a.b import _hidden, public\n")) if isinstance(n, ast.ImportFrom)]
    assert [a.name for a in imports[0].names if a.name.startswith("_")] == ["_hidden"]


def test_ruff_finds_nothing():
    """The project's own lint settings (pyproject.toml [tool.ruff]) over the whole repository: problems that
    crept in unnoticed (an unused unpacked name, a subprocess.run without check=) now fail the suite."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
