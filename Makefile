# Two commands on a fresh machine with Python 3.11+ and make: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install migrate schema lint bench clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ssc needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/ssc migrate

serve: migrate
	$(BIN)/ssc tenants apply tenants/
	$(BIN)/ssc serve

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

schema: install
	$(BIN)/python -m app.graphql.export > schema.graphql

clean:
	rm -rf $(VENV) var/ssc.db var/ssc.db-wal var/ssc.db-shm
