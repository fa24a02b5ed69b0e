# All set-up happens here: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench bench-quick clean fuzz fuzz-replay

$(VENV)/.installed: pyproject.toml setup.py ltrcompile/_libm.pyx ltrcompile/backends/cython/_treeshap.pyx
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,bench]"
	@touch $@

install: $(VENV)/.installed

lint: install
	$(PY) -m ruff check ltrcompile tests benchmarks examples

test: install lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: install
	$(PY) examples/demo.py
	$(PY) -m benchmarks --quick

bench: install
	$(PY) -m benchmarks

bench-quick: install
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) build *.egg-info ltrcompile/_libm.c ltrcompile/*.so .pytest_cache .hypothesis

# Mutation fuzzer (ltrcompile/fuzz): FUZZ_CASES per target, each in a limited child; table on stdout.
FUZZ_CASES ?= 10000
FUZZ_JOBS ?= 2
fuzz: install
	$(PY) -m ltrcompile.fuzz run --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) --json fuzz-results.json

fuzz-replay: install
	$(PY) -m ltrcompile.fuzz replay
