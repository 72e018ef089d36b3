# anomon: `make demo` to see it work, `make test` to run every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo check test unit integration lint bench compiled replay clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "installing anomon and its tools into $(VENV): about 2 minutes, once"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[dev,cdnow]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with anomon, its dev tools and the CDNOW evaluation extra

demo: $(STAMP)  ## embedded broker + worker + synthetic customers; alerts printed live (DEMO_ARGS="--customers 300")
	$(BIN)/anomon demo $(DEMO_ARGS)

lint: $(STAMP)  ## ruff, mypy and the import-layer contract (pyproject.toml [tool.importlinter])
	$(BIN)/ruff check src tests bench conftest.py setup.py
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

check: lint $(STAMP)  ## the edit-test loop, a few minutes: lint, unit tests, integration on the embedded broker only, no slow tests
	ANOMON_TEST_BROKERS=tansu $(BIN)/pytest -q -m "not slow"

unit: $(STAMP)  ## unit tests and doctests only (no broker)
	$(BIN)/pytest -m "not integration" -q

integration: $(STAMP)  ## integration tests on the embedded broker and Apache Kafka
	$(BIN)/pytest -m integration -q

test: lint $(STAMP)  ## lint, then the whole suite (integration on both brokers included)
	$(BIN)/pytest -q

compiled: $(STAMP)  ## the core compiled by mypyc into build/compiled (needs cc); run it: PYTHONPATH=build/compiled
	$(BIN)/python -m bench.compiled build/compiled

bench: $(STAMP)  ## the benchmark; writes bench/RESULTS.md and bench/results.json
	$(BIN)/python -m bench

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
