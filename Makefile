# drflow — `make demo` and `make test` work on a fresh clone; nothing to install by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test test-fast lint schema airflow sandbox-up sandbox-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]'
	touch $(STAMP)

install: system-deps $(STAMP)

# PostgreSQL 15 binaries and zstd come from Debian; install them only when missing (needs root).
system-deps:
	@missing=""; \
	test -x /usr/lib/postgresql/15/bin/pg_basebackup || missing="$$missing postgresql-15"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

demo: install
	$(BIN)/drflow demo

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check plugins tests benchmarks dags
	$(BIN)/ruff format --check plugins tests benchmarks dags
	$(BIN)/mypy

schema: install
	$(BIN)/drflow schema --output drflow.schema.json

sandbox-up: install
	$(BIN)/drflow sandbox up

sandbox-down: install
	$(BIN)/drflow sandbox down

airflow: install
	$(BIN)/python -m drflow.airflow_local

bench: install
	$(BIN)/python benchmarks/parse.py
	$(BIN)/python benchmarks/backup.py

clean:
	-$(BIN)/drflow sandbox down --purge
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
