# Quick start: `make demo` then `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.segkit-installed
DEV := $(VENV)/.segkit-dev-installed
PYTEST_WORKERS ?= 3

# `make demo` installs segkit alone (what the demo needs); the test, benchmark and Spark extras
# come with the first `make test`, `make test-spark` or `make bench`.
# `make test` type-checks src/segkit (mypy, strict; settings in pyproject.toml), then runs every
# test but the Spark engine's in three worker processes (pytest-xdist; on two cores a third worker
# fills the time the others wait on child processes and the browser: 125 s against 139 s with two);
# `make test-spark` runs those
# (local Spark, needs Java 17+). PYTEST_ARGS adds pytest options, e.g. PYTEST_ARGS="--cov=segkit";
# PYTEST_WORKERS=0 runs the suite in one process.
.PHONY: demo test test-spark bench bench-quick clean

$(BASE): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(BASE)

$(DEV): $(BASE)
	$(PY) -m pip install --quiet -e '.[test,bench,spark]'
	touch $(DEV)

demo: $(BASE)
	$(VENV)/bin/segkit segment sample_data/orders.xlsx -o segkit-out

test: $(DEV)
	$(PY) -m mypy src/segkit
	$(PY) -m compileall -q src/segkit  # bytecode once, not in every child process (PYTHONDONTWRITEBYTECODE may be set)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not spark" $(PYTEST_ARGS)

test-spark: $(DEV)
	$(PY) -m pytest -q -m spark $(PYTEST_ARGS)

bench: $(DEV)
	$(PY) benchmarks/run.py

bench-quick: $(DEV)
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf segkit-out .pytest_cache
