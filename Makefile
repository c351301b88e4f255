# drflow — `make demo` and `make test` work on a fresh clone; nothing to install by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test test-fast lint schema airflow sandbox-up sandbox-down bench clean

# Bytecode is compiled at install (uv does not by default, and PYTHONDONTWRITEBYTECODE may keep Python from
# caching it): importing Airflow and boto3 from source costs seconds on every command, task and DAG parse.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test,celery]'
	touch $(STAMP)

# drflow itself is installed editable: compile its sources too (only files changed since the last run).
install: system-deps $(STAMP)
	@$(BIN)/python -m compileall -q plugins dags

# Debian packages the engines and tests run: PostgreSQL 15, zstd, pgBackRest, nginx (a TLS proxy in
# front of moto for pgBackRest's S3 tests) and Chromium (the browser tests drive it headless through
# Playwright; Playwright's own browser download cannot work offline). Installed only when missing (needs root); services the
# packages would start are held off with a temporary policy-rc.d, since tests start their own.
system-deps:
	@missing=""; \
	test -x /usr/lib/postgresql/15/bin/pg_basebackup || missing="$$missing postgresql-15"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx-light"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  ours=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  status=$$?; [ -z "$$ours" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
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
	$(BIN)/python -m drflow.devtools.airflow_local

bench: install
	$(BIN)/python benchmarks/parse.py
	$(BIN)/python benchmarks/backup.py
	$(BIN)/python benchmarks/rpo.py
	$(BIN)/python benchmarks/failover.py
	$(BIN)/python benchmarks/restore.py
	$(BIN)/python benchmarks/files.py

clean:
	-$(BIN)/drflow sandbox down --purge
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
