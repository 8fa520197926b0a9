# Two commands on a fresh machine: `make demo` and `make test`. Each creates or updates
# .venv and installs what it needs (Python 3.11 and Node/npm are the only prerequisites).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG15_BIN ?= /usr/lib/postgresql/15/bin
# The tests that exercise SQL; CI runs them a second time on Debian's PostgreSQL 15.
DB_TESTS = tests/db
# Auth, REST and Storage again as a project that has not migrated to the new keys: HS256
# user tokens (RENDIO_JWT_ALG=HS256) and the legacy anon / service_role JWTs as API keys.
LEGACY_KEY_TESTS = tests/local/test_auth.py tests/local/test_storage.py \
	tests/db/test_stack_rest.py tests/local/test_keys.py tests/library/test_tokens.py \
	tests/local/test_js_client.py

.PHONY: install demo test test-unit test-pg15 test-legacy-keys test-long lint arch bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/rendio demo
	$(BIN)/rendio dev status

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-legacy-keys
	@if [ -x "$(PG15_BIN)/postgres" ]; then \
		$(MAKE) --no-print-directory test-pg15; \
	else \
		echo "skipping the PostgreSQL 15 pass: $(PG15_BIN) not found"; \
	fi

test-legacy-keys: install
	RENDIO_TEST_KEYS=legacy $(BIN)/pytest -q $(LEGACY_KEY_TESTS)

test-pg15: install
	RENDIO_PG_BIN=$(PG15_BIN) $(BIN)/pytest -q $(DB_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The import contracts in pyproject.toml ([tool.importlinter]) and their status.
arch: install
	$(BIN)/lint-imports

# The long campaigns, not run by `make test`: the chaos campaign at full size (200 users
# × 10 generations under worker kills and service restarts; ~10 min on 2 cores).
test-long: install
	$(BIN)/rendio chaos --users 200 --generations 10 --seed 16
	RENDIO_FUZZ_EXAMPLES=200 $(BIN)/pytest -q tests/fuzz

# The pure tests: no stack, seconds.
test-unit: install
	$(BIN)/pytest -q -m unit

# Every benchmark (several minutes; needs wrk: apt-get install wrk); one: rendio bench NAME.
bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/rendio bench all

clean:
	-$(BIN)/rendio dev down
	rm -rf .rendio
