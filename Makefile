# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench bench-terminal bench-cluster bench-failover bench-reliability bench-soak bench-timing serve simulate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kds demo

# Two workers (pytest-xdist): the suite is mostly waiting on sockets, screens and databases, and CI has 2 cores.
# `make test PYTEST_ARGS="-n 0 -k name"` runs in one process.
PYTEST_ARGS ?=
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check kds kdsapp terminals printers tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The hub under the rush beside a bare relay and the durable floor (docs/performance.md), about 8 minutes;
# PG=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres adds the flat-out run on PostgreSQL.
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Two hubs on one PostgreSQL store: PG=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres make bench-cluster
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py --pg "$(PG)"

# Restart (SQLite; and PostgreSQL with PG=…) and takeover (PG only) times with 5,000 open orders (docs/reliability.md):
# PG=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres make bench-failover
bench-failover: $(STAMP)
	$(BIN)/python bench/failover.py $(if $(PG),--pg "$(PG)",)

# Hostile devices, slow screens, a locked database: what the hub does (docs/reliability.md). QUICK=1: about a minute.
bench-reliability: $(STAMP)
	$(BIN)/python bench/reliability.py $(if $(QUICK),--quick,)

# 30 minutes at 20 orders/s with handovers: the hub's memory must level off (MINUTES=5 for a shorter look).
bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),30)

# A simulated day of the sample store in virtual time: how far the ready-time estimates were from the real ready times,
# deliveries missed, with fire by prep time off and on (issue 14; a table, JSON and var/bench-timing.png).
bench-timing: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/timing.py

# The kitchen screen under the rush: a burst into 300 open tickets, key to repaint, RSS (docs/performance.md).
bench-terminal: $(STAMP)
	$(BIN)/python bench/terminal.py

serve: $(STAMP)
	$(BIN)/kds serve

simulate: $(STAMP)
	$(BIN)/kds simulate

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
