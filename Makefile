# Two entry points (see README): `make compare` runs the main job, `make test` the tests.
# Both create .venv and install what is missing: the CPU build of torch first, then physnn.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.physnn-installed

.PHONY: compare test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

compare: $(STAMP)
	$(BIN)/physnn compare --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p build/mypy/physnn
	for f in __init__.py cli.py common pim optical quantum; do \
		ln -sfn "$(CURDIR)/$$f" build/mypy/physnn/$$f; done
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -m "not slow" -n 2

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
