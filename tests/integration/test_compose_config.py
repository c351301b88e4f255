"""docker-compose.yaml as Debian's `docker-compose config` reads it, with a `.env` from `make compose-env`.

No Docker engine is needed (or started): `config` resolves the file, its anchors and the `.env` values.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drflow.connections import parse_json
from drflow.plan.recovery import DEFAULT_AUDIT_CONN_ID
from drflow.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
MAKE_ENV = ROOT / "include" / "compose" / "make_env.py"
SPEC = ROOT / "plan_specs" / "api-marketplace.yaml"
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer")
ONE_SHOT = ("airflow-init", "minio-init", "drflow-seed")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|_KEY$|AUTH$", re.IGNORECASE)


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip("docker-compose is not installed and cannot be had here: `make system-deps` installs it (Debian)")
    return found


def make_env(path: Path) -> dict[str, str]:
    subprocess.run([sys.executable, str(MAKE_ENV), str(path)], check=True, capture_output=True)
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def config(env_file: Path) -> subprocess.CompletedProcess[str]:
    argv = [docker_compose(), "--env-file", str(env_file), "--project-directory", str(ROOT), "-f", str(COMPOSE)]
    return subprocess.run([*argv, "config"], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    values = make_env(env_file)
    result = config(env_file)
    assert result.returncode == 0, result.stderr
    yield yaml.safe_load(result.stdout), values


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_the_services_of_airflow_s_official_stack_plus_drflow_s(stack: tuple[dict[str, Any], dict[str, str]]) -> None:
    rendered, values = stack
    services = rendered["services"]
    expected = {*AIRFLOW, *ONE_SHOT, "postgres", "redis", "pg-primary", "pg-replica", "minio", "moto", "webhook"}
    assert expected <= set(services)
    for name in AIRFLOW:
        env = env_of(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    assert services["airflow-worker"]["command"] == "celery worker"
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        elif not service.get("profiles"):
            assert service["restart"] == "always", name
            assert service["healthcheck"]["test"], f"{name} has no healthcheck"


def test_every_published_port_is_on_loopback(stack: tuple[dict[str, Any], dict[str, str]]) -> None:
    published = [(name, port) for name, service in stack[0]["services"].items() for port in service.get("ports") or []]
    assert {name for name, _ in published} >= {"airflow-apiserver", "pg-primary", "pg-replica", "minio"}
    for name, port in published:
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_no_secret_is_written_in_the_file(stack: tuple[dict[str, Any], dict[str, str]], tmp_path: Path) -> None:
    text = COMPOSE.read_text()
    rendered, values = stack
    secrets = {key: value for key, value in values.items() if SECRET_NAME.search(key)}
    assert len(secrets) >= 10
    for key, value in secrets.items():
        assert value not in text, f"the value of {key} is written in docker-compose.yaml"
        assert value in json.dumps(rendered), f"{key} from .env reaches no service"
    raw = yaml.safe_load(text)
    blocks = [raw["x-airflow-common"], *raw["services"].values()]
    for environment in (block.get("environment") or {} for block in blocks):
        for key, value in environment.items():
            if SECRET_NAME.search(key) and key != "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE":
                assert "${" in str(value), f"{key} is not read from .env"

    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = config(empty)
    assert refused.returncode != 0 and "run make compose-env" in refused.stderr


def test_every_conn_id_of_the_example_spec_has_a_connection(stack: tuple[dict[str, Any], dict[str, str]]) -> None:
    spec = load_spec(SPEC).spec
    raw = yaml.safe_load(SPEC.read_text())
    named = {DEFAULT_AUDIT_CONN_ID if spec.defaults.audit_conn_id is None else spec.defaults.audit_conn_id}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            named.update(v for k, v in node.items() if (k == "conn_id" or k.endswith("_conn_id")) and v)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(raw)
    assert {"drflow_pg_primary", "drflow_pg_replica", "drflow_s3", "drflow_aws"} <= named
    services = stack[0]["services"]
    for name in AIRFLOW:
        env = env_of(services[name])
        for conn_id in sorted(named):
            value = env.get(f"AIRFLOW_CONN_{conn_id.upper()}")
            assert value is not None, f"{name} has no connection {conn_id}"
            assert parse_json(conn_id, value).conn_type in {"postgres", "aws", "http"}


def test_the_spec_s_buckets_databases_and_replica_slot_are_created() -> None:
    spec = load_spec(SPEC).spec
    raw = yaml.safe_load(COMPOSE.read_text())
    buckets = {target.bucket for target in spec.storage if target.type == "s3"}
    assert len(buckets) == 2
    mc = raw["services"]["minio-init"]["command"][0]
    assert all(f"--with-lock drflow/{bucket}" in mc for bucket in buckets)
    primary_init = (ROOT / "include" / "compose" / "primary-init.sh").read_text()
    replica = (ROOT / "include" / "compose" / "replica-entrypoint.sh").read_text()
    stores = [c.postgres for c in spec.components if c.postgres is not None]
    for store in stores:
        assert f"CREATE DATABASE {store.database};" in primary_init
        for node in store.replicas:
            assert f"pg_create_physical_replication_slot('{node.slot}')" in primary_init
            assert f"--slot {node.slot}" in replica
    assert "host replication replicator all scram-sha-256" in primary_init


def test_make_compose_env_never_overwrites(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    first = make_env(env_file)
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert make_env(env_file) == first
    assert make_env(tmp_path / "other.env") != first, "every file gets fresh secrets"
