# Every target creates .venv on first use, so a fresh clone needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test soak lint typecheck dist docs bench diagram unasync clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/voucher simulate --scenario all

# The suite mostly waits (child processes, sockets, PostgreSQL), so it runs on more workers
# than a small machine has cores; each test uses its own ports, files and schemas.
WORKERS ?= 4

test: $(STAMP) lint typecheck dist docs
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

# Longer runs than make test has time for: the property tests ten times over, and a chaos run
# of 20,000 sales on a SQLite journal, each printing its figures.
soak: $(STAMP)
	VOUCHER_SOAK=10 $(BIN)/python -m pytest -n $(WORKERS) \
		--hypothesis-show-statistics --durations=5 tests/test_invariants.py
	rm -f build/soak.db* && mkdir -p build
	$(BIN)/voucher simulate --chaos --count 20000 --seed 1 --db build/soak.db
	rm -f build/soak.db*

lint: $(STAMP)
	$(BIN)/ruff check voucher_core voucher_adapters tests benchmarks docs examples scripts
	$(BIN)/ruff format --check voucher_core voucher_adapters tests benchmarks docs examples scripts
	$(BIN)/python scripts/unasync.py --check

typecheck: $(STAMP)
	$(BIN)/mypy voucher_core voucher_adapters

# The sdist and wheel, checked as a package index would check them; then the sdist is unpacked
# and its own tests collected, so a missing test helper fails here and not on a user's machine.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	rm -rf build/sdist-check && mkdir -p build/sdist-check
	tar -xzf dist/*.tar.gz -C build/sdist-check
	cd build/sdist-check/voucher_core-* && PYTHONPATH=. $(abspath $(BIN))/python -m pytest \
		--collect-only -q -p no:cacheprovider tests >../collect.log \
		|| { cat ../collect.log; exit 1; }
	tail -n 1 build/sdist-check/collect.log
	rm -rf build/sdist-check

# The documentation site in build/docs (open build/docs/index.html): the Markdown pages in
# docs/ and the API reference from the docstrings. Strict: a warning (a broken link or
# reference, a docstring that does not parse) fails the build.
docs: $(STAMP)
	rm -rf build/docs
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs build/docs

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
