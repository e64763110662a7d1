# Every target creates .venv on first use, so a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench diagram unasync clean

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
	$(BIN)/ruff check voucher_core voucher_adapters tests benchmarks docs examples scripts
	$(BIN)/ruff format --check voucher_core voucher_adapters tests benchmarks docs examples scripts
	$(BIN)/python scripts/unasync.py --check

typecheck: $(STAMP)
	$(BIN)/mypy voucher_core voucher_adapters

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_durable.py
	$(BIN)/python benchmarks/bench_postgres.py

diagram: $(STAMP)
	$(BIN)/python docs/regenerate.py

# The sync driver is generated from the async one; edit voucher_core/drivers/async_driver.py.
unasync: $(STAMP)
	$(BIN)/python scripts/unasync.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
