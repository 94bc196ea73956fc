# Quick start: `make demo` then `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.segkit-installed
PYTEST_WORKERS ?= 2

# `make test` type-checks src/segkit (mypy, strict; settings in pyproject.toml), then runs pytest
# in two worker processes (pytest-xdist; the Spark tests share one worker and one SparkSession).
# PYTEST_ARGS adds pytest options, e.g. PYTEST_ARGS="--cov=segkit" (CI reports coverage this way);
# PYTEST_WORKERS=0 runs the suite in one process.
.PHONY: demo test bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,spark]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/segkit segment sample_data/orders.xlsx -o segkit-out

test: $(STAMP)
	$(PY) -m mypy src/segkit
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-quick: $(STAMP)
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf segkit-out .pytest_cache
