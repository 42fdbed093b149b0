# televikar-pbx: the two commands a newcomer needs are `make run` and `make test`.
# Every install step lives here and in the scripts it calls (Debian 12, as root).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
LAB := asterisk/lab.sh
LAB_ENV = $(shell bash $(LAB) env-file)
# Debian packages the service and its tests use on the host (Asterisk itself lives in
# the lab's own Debian sid root, see asterisk/README.md).
HOST_PACKAGES := python3 python3-venv python3-dev gcc curl ca-certificates debootstrap \
	sip-tester espeak-ng sox postgresql systemd
# Only the tests need these: the agent desk's browser test runs Debian's Chromium; the
# cluster lab runs Kamailio, which reads the agents' phone secrets from PostgreSQL.
TEST_PACKAGES := chromium kamailio kamailio-postgres-modules

.PHONY: help host-deps test-deps venv asterisk asterisk-stop cluster db run test test-fast test-unit check fmt clean

help:
	@echo "make run            set up everything and run the service (embedded defaults)"
	@echo "make test           set up everything and run all tests (unit, DB, real Asterisk)"
	@echo "make test-fast      the inner-loop suite: no Asterisk, no PostgreSQL"
	@echo "make check          ruff, ruff format --check, mypy --strict, import layers"
	@echo "make asterisk       provision and start the Asterisk lab (idempotent)"
	@echo "make asterisk-stop  stop the Asterisk lab and unmount what it mounted"
	@echo "make cluster        the cluster lab: Kamailio + two Asterisk nodes, until Ctrl-C"
	@echo "make bench          load benchmark: our desk vs Queue() vs bare Answer() (~14 min)"
	@echo "make bench-quick    its main ratios (ours vs Queue()) in under 3 min: BENCH_ARGS=--quick"

host-deps test-deps: PACKAGES = $(if $(filter test-deps,$@),$(TEST_PACKAGES),$(HOST_PACKAGES))
host-deps test-deps:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		[ "$$(id -u)" = 0 ] || { echo "make: installing $$missing needs root" >&2; exit 1; }; \
		echo "installing host packages: $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "make: could not install $$missing (no network to the Debian archive?)" >&2; exit 1; }; \
	fi

$(BIN)/.installed: pyproject.toml | host-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: host-deps $(BIN)/.installed

asterisk: host-deps
	bash $(LAB) start

asterisk-stop:
	bash $(LAB) stop

# The cluster lab (asterisk/README.md, "The cluster lab"): Kamailio in front of two Asterisk
# nodes from the lab's root, beside the lab; stops everything it started on Ctrl-C.
cluster: venv test-deps
	@test -x $${TELEVIKAR_LAB_DIR:-/var/cache/televikar-pbx/lab}/root/usr/sbin/asterisk || bash $(LAB) provision
	$(BIN)/python -m lab.cluster run

db: venv
	TELEVIKAR_ENV_FILE=$(LAB_ENV) $(BIN)/televikar-pbx db upgrade
	TELEVIKAR_ENV_FILE=$(LAB_ENV) $(BIN)/televikar-pbx demo load

run: venv asterisk db
	TELEVIKAR_ENV_FILE=$(LAB_ENV) exec $(BIN)/televikar-pbx serve

# All of it: the real-Asterisk tests, and beside them (niced) the rest and the
# shifted-clock guard (tests/setup/run-all.sh). PYTEST_ARGS runs just that selection.
test: venv test-deps asterisk
	@pg_url=$$(bash tests/setup/postgres.sh) || exit 1; \
	export $$pg_url TELEVIKAR_ENV_FILE=$(LAB_ENV); \
	if [ -n "$(PYTEST_ARGS)" ]; then $(BIN)/pytest -ra $(PYTEST_ARGS); \
	else bash tests/setup/run-all.sh; fi

# The inner loop: no Asterisk, no PostgreSQL (~45 s on 2 cores, four pytest processes).
test-fast: venv test-deps
	$(BIN)/pytest -q -m "not asterisk and not postgres" $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -ra tests/unit

check: venv
	$(BIN)/ruff check src tests migrations benchmarks lab
	$(BIN)/ruff format --check src tests migrations benchmarks lab
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo  # the layer order ([tool.importlinter])

fmt: venv
	$(BIN)/ruff check --fix src tests migrations benchmarks lab
	$(BIN)/ruff format src tests migrations benchmarks lab

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Load benchmark (issue 7): our ACD against Queue() and a bare Answer() on this machine,
# with its own Asterisk beside the lab's (benchmarks/load.py; docs/performance.md).
# Needs only the lab's root, provisioned here if missing; BENCH_ARGS adds options.
.PHONY: bench bench-quick
bench: venv
	@test -x $${TELEVIKAR_LAB_DIR:-/var/cache/televikar-pbx/lab}/root/usr/sbin/asterisk || bash $(LAB) provision
	$(BIN)/python benchmarks/load.py $(BENCH_ARGS)

# The short ladder for work in progress (benchmarks/loadbench/config.py, QUICK).
bench-quick:
	@$(MAKE) --no-print-directory bench BENCH_ARGS="--quick $(BENCH_ARGS)"
