# Two entry points (see README): `make compare` runs the main job, `make test` the tests.
# Both create .venv and install what is missing: the CPU build of torch first, then physnn.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.physnn-installed
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadgroup

.PHONY: compare test test-all checks lint docs venv clean

venv: $(STAMP)

# torch is pinned on the same command line as physnn so that no extra (torchvision for
# onnx2torch, say) can swap the CPU build of torch for another one. --no-compile leaves the
# bytecode to the first import: pip would compile every module of every package (Ray's and
# torch's included) up front, which took 90 s of a 185 s set-up; the modules a run imports
# then compile once, in about 13 s.
PIP := $(BIN)/python -m pip install --quiet --no-compile
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) torch==2.13.0 -e '.[dev]'
	touch $(STAMP)

compare: $(STAMP)
	$(BIN)/physnn compare --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The API reference built from the docstrings; --strict fails on a broken reference.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# The static checks and the docs build side by side: mypy (51 s with a cold cache, one core)
# and mkdocs (14 s) overlap on a 2-core CI machine.
checks: $(STAMP)
	$(MAKE) --no-print-directory -j2 lint docs

# The default run: everything but the tests marked slow (accuracy, reproduction, notebooks).
test: checks
	$(PYTEST) -m "not slow"

# Everything, with the longer hypothesis profile of tests/conftest.py.
test-all: checks
	$(PYTEST) --hypothesis-profile=thorough

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
