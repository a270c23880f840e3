# `make test` and `make demo` work on a fresh clone: each creates .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A second environment holding the lowest version of each dependency that pyproject.toml allows.
FLOORS_VENV ?= .venv-floors
FLOORS_STAMP := $(FLOORS_VENV)/.installed
# `make test` and `make floors` run the suite on this many pytest-xdist workers (every test
# starts its servers on free ports, in its own temporary folder); WORKERS=0 runs it in one
# process. Work is stolen between workers, so one holding the slow tests does not finish last.
WORKERS ?= 2
XDIST := -n $(WORKERS) --dist worksteal

.PHONY: test coverage floors floors-env lint typecheck check demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST)

# The suite under coverage; prints the per-file table and the total.
coverage: $(STAMP)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest -q
	$(BIN)/python -m coverage report

# Proves the floors in pyproject.toml: the suite and ruff run against the lowest version of
# every direct dependency, resolved by uv (coverage is left out: it would double the run).
# The Monte Carlo rollouts (marker `simulation`) are left out: they test the guardrails'
# statistics, whose scipy and numpy calls the unit tests exercise on the floors.
floors: $(FLOORS_STAMP)
	VIRTUAL_ENV=$(FLOORS_VENV) $(BIN)/uv pip list --quiet 2>/dev/null | grep -E '^(openfeature|opentelemetry|pydantic|httpx|tiktoken|launchdarkly-openfeature|scipy|numpy|starlette|uvicorn|watchfiles|pytest |pytest-xdist|hypothesis|ruff|coverage)'
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not simulation" $(XDIST)
	$(FLOORS_VENV)/bin/ruff check src tests examples benchmarks
	$(FLOORS_VENV)/bin/ruff format --check src tests examples benchmarks

# The floors' environment alone (CI builds it while the suite runs).
floors-env: $(FLOORS_STAMP)

$(FLOORS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	rm -rf $(FLOORS_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(FLOORS_VENV)
	VIRTUAL_ENV=$(FLOORS_VENV) $(BIN)/uv pip install --quiet --resolution lowest-direct -e '.[dev]'
	touch $(FLOORS_STAMP)

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
