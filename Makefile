# `make run` and `make test` work on a fresh clone: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench widget browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/ringback demo

test: $(STAMP) browser
	$(BIN)/python -m pytest

browser:
	@./scripts/ensure-chromium

lint: $(STAMP)
	$(BIN)/ruff check .

widget: $(STAMP)
	$(BIN)/python widget/build.py

bench: $(STAMP)
	$(BIN)/python bench/widget_size.py
	$(BIN)/python bench/hops.py
