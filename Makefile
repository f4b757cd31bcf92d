# Two commands on a fresh machine with Python 3.11+ and make: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test soak install migrate schema lint clean

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

# The suite on every core (pytest-xdist): each worker has its own databases.
test: lint
	$(BIN)/python -m pytest -n auto

# The long versions of the generated tests: the fuzzer and the stateful isolation machine.
soak: install
	SSC_FUZZ_CASES=20000 SSC_FUZZ_SECONDS=3000 SSC_STATEFUL_EXAMPLES=1000 \
		$(BIN)/python -m pytest -n auto tests/fuzz tests/stateful

schema: install
	$(BIN)/python -m app.graphql.export > schema.graphql

clean:
	rm -rf $(VENV) var/ssc.db var/ssc.db-wal var/ssc.db-shm
