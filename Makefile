# drflow — `make demo` and `make test` work on a fresh clone; nothing to install by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test test-fast lint schema airflow sandbox-up sandbox-status sandbox-reset sandbox-down bench clean compose-env

# The extras `make demo` and `make test` need: psycopg's bundled libpq, the sandbox's moto server, the test tools.
# Bytecode is compiled at install (uv does not by default, and PYTHONDONTWRITEBYTECODE may keep Python from
# caching it): importing Airflow and boto3 from source costs seconds on every command, task and DAG parse.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[binary,sandbox,test]'
	touch $(STAMP)

# drflow itself is installed editable: compile its sources too (only files changed since the last run).
install: system-deps $(STAMP)
	@$(BIN)/python -m compileall -q plugins dags

# Debian packages the engines and tests run: PostgreSQL 15, zstd, pgBackRest, nginx (a TLS proxy in
# front of moto for pgBackRest's S3 tests) and Chromium (the browser tests drive it headless through
# Playwright; Playwright's own browser download cannot work offline) and docker-compose (the compose test runs
# `docker-compose config`: installed without its recommended Docker engine). Installed only when missing (needs root); services the
# packages would start are held off with a temporary policy-rc.d, since tests start their own.
system-deps:
	@missing=""; lean=""; \
	test -x /usr/lib/postgresql/15/bin/pg_basebackup || missing="$$missing postgresql-15"; \
	command -v zstd >/dev/null || missing="$$missing zstd"; \
	command -v pgbackrest >/dev/null || missing="$$missing pgbackrest"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx-light"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || lean="docker-compose"; \
	if [ -n "$$missing$$lean" ]; then \
	  echo "installing Debian packages:$$missing $$lean"; \
	  ours=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1; fi; \
	  apt-get update -qq \
	  && { [ -z "$$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
	  && { [ -z "$$lean" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$lean; }; \
	  status=$$?; [ -z "$$ours" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi

demo: install
	$(BIN)/drflow demo

# Two workers, one test module each at a time (module fixtures stay shared): most tests wait on servers
# (PostgreSQL, Airflow, moto), so the two cores overlap those waits. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
TEST_ARGS := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: install
	$(BIN)/pytest $(TEST_ARGS)

test-fast: install
	$(BIN)/pytest $(TEST_ARGS) -m "not slow"

lint: install
	$(BIN)/ruff check plugins tests benchmarks dags
	$(BIN)/ruff format --check plugins tests benchmarks dags
	$(BIN)/mypy

schema: install
	$(BIN)/drflow schema --output drflow.schema.json

sandbox-up: install
	$(BIN)/drflow sandbox up

sandbox-status: install
	$(BIN)/drflow sandbox status

# After a failover drill: a writable primary with a streaming replica again (see README, "Getting started").
sandbox-reset: install
	$(BIN)/drflow sandbox reset

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

# The .env of docker-compose.yaml: every secret random, written once (an existing .env is kept). Standard library only.
compose-env:
	@$(PYTHON) include/compose/make_env.py .env

clean:
	-$(BIN)/drflow sandbox down --purge
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
