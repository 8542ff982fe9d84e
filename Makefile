# Set-up in one command: `make space` serves the Space with the bundled models, `make test` runs what CI runs.
# Each makes .venv first (with only Python installed); pip re-runs when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NO_MKDOCS_2_WARNING := 1

.PHONY: space test test-fast lint docs docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.space: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[space]"
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[space,test,docs]"
	touch $@ $(VENV)/.space

space: $(VENV)/.space  ## serve the Space with the bundled models at http://127.0.0.1:7860
	$(BIN)/vae-hub space space/models

test: lint docs  ## ruff, the docs site (strict), then every test (the tutorials included)
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.dev  ## the tests that start no process, server or browser (~30 s)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: $(VENV)/.dev  ## build the documentation site into site/, warnings as errors
	$(BIN)/mkdocs build --strict --quiet

docs-serve: $(VENV)/.dev  ## the documentation site at http://127.0.0.1:8000, rebuilt on every change
	$(BIN)/mkdocs serve

clean:
	rm -rf site $(VENV)
