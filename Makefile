# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and reinstall when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsbench-installed
DEMO ?= demo
# make demo DEMO_ARGS=--no-training stops after the dataset builders.
DEMO_ARGS ?=

.PHONY: demo test install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m rsbench.cli.demo --out $(DEMO) $(DEMO_ARGS)

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache .ruff_cache
