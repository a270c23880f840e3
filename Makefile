# `make test` and `make demo` work on a fresh clone: each creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A second environment holding the lowest version of each dependency that pyproject.toml allows.
FLOORS_VENV ?= .venv-floors

.PHONY: test coverage floors lint typecheck check demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The suite under coverage; prints the per-file table and the total.
coverage: $(STAMP)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage report

# Proves the floors in pyproject.toml: the suite and ruff run against the lowest version of
# every direct dependency, resolved by uv (coverage is left out: it would double the run).
floors: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	rm -rf $(FLOORS_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(FLOORS_VENV)
	VIRTUAL_ENV=$(FLOORS_VENV) $(BIN)/uv pip install --quiet --resolution lowest-direct -e '.[dev]'
	VIRTUAL_ENV=$(FLOORS_VENV) $(BIN)/uv pip list --quiet 2>/dev/null | grep -E '^(openfeature|opentelemetry|pydantic|httpx|tiktoken|launchdarkly-openfeature|pytest |hypothesis|ruff|coverage)'
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider
	$(FLOORS_VENV)/bin/ruff check src tests examples benchmarks
	$(FLOORS_VENV)/bin/ruff format --check src tests examples benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

demo: $(STAMP)
	$(BIN)/leadctx demo

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) $(FLOORS_VENV) .coverage .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
