# Two commands on a fresh machine (only python3 and make needed):
#   make run    set up .venv, run the pipeline on the embedded sample data, print where outputs went
#   make test   set up .venv (with the [dev] and [dask] extras), run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Offline and local: Prefect keeps its SQLite database in the checkout; no telemetry.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test lint setup bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rnn-forecast run

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Lint, format and type check (configured in pyproject.toml [tool.ruff], [tool.mypy]); .ci/run runs it
# before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) .prefect store .pytest_cache
