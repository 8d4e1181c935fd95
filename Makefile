# Two commands on a fresh clone: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint locales run bench clean

# An editable install: the development sandbox (src/touchpoint/sandbox, left out of wheels and the
# Docker image) comes with it, so `make demo` and `make test` have it.
$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

locales: $(STAMP)
	$(BIN)/touchpoint i18n compile

demo: locales
	$(BIN)/touchpoint demo

run: locales
	$(BIN)/touchpoint run

lint: $(STAMP)
	$(BIN)/ruff check .

test: locales lint
	$(BIN)/python -m pytest -q

bench: locales
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache touchpoint.db*
	find locales -name '*.mo' -delete
