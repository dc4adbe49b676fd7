# index-proxy: `make run` serves with the embedded defaults, `make test` runs the whole suite (on SQLite,
# then on PostgreSQL).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?=
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml setup.py resolver/_core.pyx | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/index-proxy serve $(if $(CONFIG),--config $(CONFIG))

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite twice: the proxies' state in SQLite files (the default), then in fresh PostgreSQL
# databases (tests/support/databases.py).
test: install lint
	INDEX_PROXY_TEST_DATABASE=sqlite $(BIN)/python -m pytest $(PYTEST_ARGS)
	INDEX_PROXY_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/serve.py

clean:
	rm -rf $(VENV) var build *.egg-info
