# The two commands that matter:  `make run`  runs the system,  `make test`  runs every check.
# Both install what is missing first. See README.md and docs/operators.md.

SHELL := /bin/bash
PYTHON ?= python3.11
DEMO ?= 0
## `make run INSTANCES=2`: two instances of every service (the second on ports 8101-8104);
## `make run KAFKA_NODES=3`: Kafka as a cluster of three nodes (topics kept on three, written to two at least).
## Without KAFKA_NODES the stack keeps the number of nodes its Kafka was made with (deploy/local/stack says how to
## change it).
INSTANCES ?= $(or $(TIMPORA_INSTANCES),1)
KAFKA_NODES ?= $(TIMPORA_STACK_KAFKA_NODES)
SHAPE := TIMPORA_INSTANCES=$(INSTANCES) $(if $(KAFKA_NODES),TIMPORA_STACK_KAFKA_NODES=$(KAFKA_NODES))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser axe run up down status demo test check lint typecheck pytest stack-up stack-down schemas docs lock clean bench faults

install: $(STAMP)

$(STAMP): requirements/dev.txt requirements/constraints.txt libs/common/pyproject.toml services/*/pyproject.toml
	@py=$$(command -v $(PYTHON) || command -v python3) && \
	  $$py -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is needed, found " + sys.version)' && \
	  { test -x $(BIN)/python || $$py -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	PIP_CONSTRAINT=requirements/constraints.txt $(BIN)/python -m pip install --quiet -r requirements/dev.txt
	@touch $(STAMP)

## The browser the portal's tests drive: Debian's Chromium at /usr/bin/chromium, through Playwright (never
## `playwright install`). Installed from Debian's package when missing: as root, or with sudo.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null; then sudo=sudo; \
	  else echo "make browser: $(CHROMIUM) not found, and installing it needs root: apt-get install chromium" >&2; exit 1; fi; \
	  command -v apt-get >/dev/null || { echo "make browser: $(CHROMIUM) not found: install Debian's chromium package" >&2; exit 1; }; \
	  echo "make browser: $(CHROMIUM) not found: installing Debian's chromium package ($${sudo:+sudo }apt-get install chromium) for the portal's browser tests" >&2; \
	  $$sudo apt-get update -qq >&2 && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
	    && test -x $(CHROMIUM); \
	}

## axe-core, the accessibility engine the portal's browser tests run in each page (tools/axe, pinned by its lock).
AXE := tools/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): tools/axe/package.json tools/axe/package-lock.json
	@command -v npm >/dev/null || { echo "make axe: npm not found: install Debian's npm package (apt-get install npm)" >&2; exit 1; }
	npm ci --prefix tools/axe --no-audit --no-fund --silent
	@touch $(AXE)

## Run the system in the foreground (Ctrl-C stops it all). `make run DEMO=1` also loads demo data.
run: install
	TIMPORA_DEMO=$(DEMO) $(SHAPE) deploy/local/run

## Start in the background / stop / show what runs (for scripts).
up: install
	TIMPORA_DEMO=$(DEMO) $(SHAPE) deploy/local/run --background
down:
	$(SHAPE) deploy/local/run --stop
status:
	$(SHAPE) deploy/local/run --status

## Load the demo set into the running system (the same as DEMO=1 on run/up).
demo: install
	deploy/local/demo

## Every check: lint, format, types, then all tests against the real Kafka and PostgreSQL.
test: install browser axe
	deploy/local/stack with -- $(MAKE) --no-print-directory check

check: lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest: browser axe
	$(BIN)/python -m pytest

## The fault-injection scenarios at full length (tests/faults: two instances of each service, a fault at a random
## instant under load), their table written to bench/faults.md. `make test` runs them short.
faults: install
	deploy/local/stack with -- env TIMPORA_FAULTS=full $(BIN)/python -m pytest tests/faults -q

stack-up: install
	deploy/local/stack up
stack-down:
	deploy/local/stack down

## Regenerate the JSON Schemas agencies validate against (a test fails when they are stale).
schemas: install
	$(BIN)/timpora-schemas export

## Regenerate the reference in docs/reference/ from the code: each service's OpenAPI document, and the event contract
## with its JSON Schemas (tools/reference.py; a test fails when it is stale).
docs: schemas
	$(BIN)/python -m tools.reference

## Re-pin every third-party version from the current environment.
lock:
	{ head -n 2 requirements/constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^timpora'; } > requirements/constraints.tmp
	mv requirements/constraints.tmp requirements/constraints.txt

clean:
	deploy/local/run --stop || true
	rm -rf .stack $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

## Benchmarks against raw baselines, in one run (see bench/README.md).
bench: install
	deploy/local/stack with -- $(BIN)/python -m bench.run
