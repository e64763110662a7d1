# Every target creates .venv on first use, so a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench diagram clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/voucher simulate --scenario all

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check voucher_core voucher_adapters tests benchmarks docs examples
	$(BIN)/ruff format --check voucher_core voucher_adapters tests benchmarks docs examples

typecheck: $(STAMP)
	$(BIN)/mypy voucher_core voucher_adapters

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_durable.py
	$(BIN)/python benchmarks/bench_postgres.py

diagram: $(STAMP)
	$(BIN)/python docs/regenerate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
