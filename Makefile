# The two commands of the README: `make run` and `make test` (and `make bench`,
# `make lint`, `make test-fast`).
# Both install what they need first (a virtualenv in .venv, node_modules for
# the JavaScript test clients), so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run dev lint test test-fast bench clean chromium

run: $(VENV)/.runtime
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

dev: $(VENV)/.runtime
	$(BIN)/flask --app app run --debug

# Lint (ruff.toml: pyflakes, bugbear, import order, syntax errors), then the
# whole suite. `make test-fast`: only the tests marked `unit` (pure codecs and
# logic, no server, no sockets), in seconds.
lint: $(VENV)/.dev
	$(BIN)/ruff check .

test: $(VENV)/.dev node_modules/.installed chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m unit -q $(PYTEST_ARGS)

# The playground's browser tests drive the system Chromium (Debian package)
# with Playwright; installed here when missing and we are root, else they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "chromium is not installed: the browser tests will be skipped"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Benchmarks (bench/run.py): fake upstream, gunicorn as in production, load
# generator, each in its own process; writes bench/results/ (bench/README.md).
# Two to eight minutes on two cores.
bench: $(VENV)/.runtime
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache
