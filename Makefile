# `make run`, `make lint` and `make test` work on a fresh clone with nothing but python3: they create .venv
# and install requirements.lock into it (exact versions, hash-checked), then the project itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall only when the lock or the project's own metadata changed.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: run test lint lock bench widget browser

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

# `make run PORT=8080 HOST=0.0.0.0`: the demo's banner, widget tag and embed snippets follow the address.
HOST ?= 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/ringback demo --host $(HOST) --port $(PORT)

test: lint browser
	$(BIN)/python -m pytest

browser:
	@./scripts/ensure-chromium

# lint-imports runs last: a broken contract still lets ruff and mypy report first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy dialer
	$(BIN)/lint-imports --no-logo

# After changing a dependency in pyproject.toml: `make lock` resolves every extra for every Python the
# project supports and platform (`--universal`); `make lock ARGS=--upgrade` moves every pin to the latest.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" --quiet -o requirements.lock $(ARGS)

widget: $(STAMP)
	$(BIN)/python widget/build.py

bench: $(STAMP)
	$(BIN)/python bench/widget_size.py
	$(BIN)/python bench/hops.py
