# Huinong: `make run` serves the platform with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HUINONG_DATABASE_URL ?= sqlite:///var/huinong.db

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/huinong db upgrade
	$(BIN)/huinong demo load --if-empty
	$(BIN)/huinong serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/crypto.py
	$(BIN)/python benchmarks/subsidy.py
	$(BIN)/python benchmarks/credit.py
	$(BIN)/python benchmarks/credit_rules.py
	$(BIN)/python benchmarks/german_credit.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
