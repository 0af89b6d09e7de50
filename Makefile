# cs_kpis: set-up and everyday commands. Needs only python3.11, make and PyPI.
#   make run    build every asset (demo company, warehouse tables) and run every check
#   make test   the whole test suite
#   make ui     the Dagster UI on http://127.0.0.1:3000

PYTHON ?= python3.11
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
# touched after a successful install; the venv is re-installed only when pyproject.toml is newer
STAMP := $(VENV)/.cs_kpis-installed
PYTEST ?= $(VENV_PY) -m pytest
PYTEST_ARGS ?=
# `make test` runs the suite in this many pytest-xdist worker processes (0: in this process). Each test file
# stays on one worker (--dist loadscope), so a file's module fixtures are built once
TEST_WORKERS ?= 2
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
# where the SQL models run: duckdb (default) or spark (an exported CS_KPIS_ENGINE works too)
ENGINE ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test ui clean-state

# list the targets
help:
	@echo "make run          build every asset and run every check (creates .venv on first use)"
	@echo "make run ENGINE=spark   the same with the SQL models on local Spark Connect (needs Java 17+)"
	@echo "make test         run the test suite"
	@echo "make ui           Dagster UI on http://$(UI_HOST):$(UI_PORT) (runs from 'make run' are listed there)"
	@echo "make venv         create .venv with $(PYTHON) and install the project (run, test and ui do it themselves)"
	@echo "make clean-state  delete .state/ (warehouse, dlt state, Dagster run history)"

# create the virtualenv and install the project, editable, with dev tools
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --disable-pip-version-check -e '.[dev,spark]'
	@touch $(STAMP)

# materialize every asset and asset check in-process; the summary lists tables and check results.
# ENGINE=spark runs the SQL models on Spark Connect (local[2], or CS_KPIS_SPARK_REMOTE); docs/SCALE_OUT.md
run: venv
	$(if $(ENGINE),CS_KPIS_ENGINE=$(ENGINE) )$(VENV_PY) -m cs_kpis.run

# the whole suite; pytest's exit code 5 ("no tests collected") counts as a failure, not a pass.
# The KPI report's browser test needs Debian's chromium: installed here when missing and apt is usable;
# never fails the target (the test skips with a message when chromium cannot be found).
test: venv
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		(command -v apt-get >/dev/null 2>&1 && apt-get update -qq >/dev/null 2>&1 && \
		 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) || \
		echo "chromium unavailable: the report's browser test will skip" >&2
	@rc=0; $(PYTEST) -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED, pytest collected no tests (exit code 5)" >&2; fi; \
	exit $$rc

# the Dagster UI with the same DAGSTER_HOME and paths as `make run` (settings prints them as exports).
# `dg dev` (dagster-dg-cli) is what `dagster dev` now tells users to run; given the workspace file it
# serves the same code location as `dagster dev -w workspace.yaml` did.
ui: venv
	exports="$$($(VENV_PY) -m cs_kpis.settings)" && eval "$$exports" && \
	exec $(VENV)/bin/dg dev --host $(UI_HOST) --port $(UI_PORT) --workspace workspace.yaml

# delete all local state; the landing folder (data/landing) is kept
clean-state:
	rm -rf .state
