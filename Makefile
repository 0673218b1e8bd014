# kurashi — see README.md. `make run` and `make test` work on a fresh clone with Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: setup run test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# train and cache the intent model now, so `make run` only loads it (kurashi kb check does this)
	-$(BIN)/kurashi kb check > /dev/null 2>&1
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/kurashi serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check bot delivery intents knowledge scheduler tests bench
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) var/*.db .pytest_cache
