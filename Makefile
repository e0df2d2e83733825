# openiort: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export MPLBACKEND := Agg

.PHONY: demo test validate lint bench system-deps install clean reference-outputs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (browser, DICOM validators, PostgreSQL); idempotent.
system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/iort demo --out demo-output --overwrite

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "not validate" -n 2 --dist loadgroup -q

validate: $(STAMP) system-deps
	$(BIN)/python -m pytest -m validate -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Re-make the stored plan.json of the examples and the demo (tests/reference_outputs/); a change
# that alters plans on purpose runs this in the same commit so the diff is reviewed with it.
reference-outputs: $(STAMP)
	$(BIN)/python tests/core/reference_plans.py

clean:
	rm -rf $(VENV) demo-output .numba_cache .pytest_cache .mypy_cache .ruff_cache
