"""The incident CLI reads the store without importing Airflow, from the same connection definitions.

S3 is a real moto server over HTTP; the Airflow-free path is checked against Airflow's own parser and
against the provider's S3Hook on the same bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from drflow.connections import ConnectionDefinitionError, parse_uri, read_without_airflow
from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, aws_conn_uri_json
from drflow.store.base import StoreError
from drflow.store.s3 import S3Store
from tests.fixtures.s3 import S3_TEST_REGION, MotoServer

MiB = 1024 * 1024


@pytest.fixture
def without_airflow() -> Iterator[None]:
    read_without_airflow()
    yield
    read_without_airflow(False)


def _spec(tmp_path: Path, storage: str) -> Path:
    """A valid spec with one component backed up daily to the one storage target (named ``t``)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: incident, owner: ops}\nregions: [{name: us-east-1, role: primary}]\n"
        f"storage:\n  - {{name: t, {storage}}}\n"
        "components:\n  - {name: db, criticality: low, rto: 1h, rpo: 1d, datastore: {type: postgres, "
        "database: app, primary: {conn_id: pg, region: us-east-1}}, backups: [{name: daily, type: full, "
        "method: pg_basebackup, schedule: '@daily', targets: [t], retention: {days: 7}}]}\n"
    )
    return spec


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "drflow.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_backups_list_on_a_local_store_imports_no_airflow(tmp_path: Path) -> None:
    spec = _spec(tmp_path, f"type: local, path: {tmp_path / 'store'}")
    result = _cli(["backups", "list", "--spec", str(spec)], {})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no complete backups" in result.stderr
    assert not {m for m in _imported(result.stderr) if m.split(".")[0] == "airflow"}


def test_backups_list_on_s3_imports_neither_airflow_nor_the_provider(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> None:
    spec = _spec(tmp_path, f"type: s3, bucket: {s3_bucket}, conn_id: incident_s3, region: us-east-1")
    env = {"AIRFLOW_CONN_INCIDENT_S3": aws_conn_uri_json(moto_server.endpoint_url, moto_server.region)}
    result = _cli(["backups", "list", "--spec", str(spec), "--json"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []
    assert not {m for m in _imported(result.stderr) if m.split(".")[0] == "airflow"}


def test_an_undefined_connection_is_an_error_even_when_default_aws_credentials_would_work(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> None:
    spec = _spec(tmp_path, f"type: s3, bucket: {s3_bucket}, conn_id: nowhere_s3, region: us-east-1")
    defaults = {  # boto3's default chain would reach the bucket with these
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AIRFLOW_HOME": str(tmp_path / "no-airflow-home"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__SECRETS__"))}
    result = subprocess.run(
        [sys.executable, "-m", "drflow.cli", "backups", "list", "--spec", str(spec)],
        env={**env, **defaults},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Airflow connection 'nowhere_s3' is not defined" in result.stderr
    assert "export AIRFLOW_CONN_NOWHERE_S3" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_boto3_path_keeps_the_store_contract_and_sees_what_the_hook_wrote(
    without_airflow: None, moto_server: MotoServer, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = quote(moto_server.endpoint_url, safe="")
    monkeypatch.setenv(  # the URI form this time
        "AIRFLOW_CONN_URI_S3",
        f"aws://{DUMMY_ACCESS_KEY}:{DUMMY_SECRET_KEY}@/?endpoint_url={endpoint}&region_name={S3_TEST_REGION}",
    )
    plain = S3Store(s3_bucket, prefix="p", aws_conn_id="uri_s3")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * MiB))
    plain.put_file("big/big.bin", src)  # multipart, like the hook's transfer configuration
    plain.put_bytes("small", b"x")
    assert plain.client.head_object(Bucket=s3_bucket, Key="p/big/big.bin")["ETag"].strip('"').endswith("-2")
    assert plain.list_keys() == ["big/big.bin", "small"]
    assert plain.size("big/big.bin") == 20 * MiB and plain.exists("small") and not plain.exists("nope")
    assert "airflow.providers.amazon.aws.hooks.s3" not in type(plain.client).__module__

    read_without_airflow(False)  # the same objects through the provider's S3Hook, as in a task
    monkeypatch.setenv("AIRFLOW_CONN_HOOK_S3", aws_conn_uri_json(moto_server.endpoint_url, moto_server.region))
    hooked = S3Store(s3_bucket, prefix="p", aws_conn_id="hook_s3")
    back = tmp_path / "back.bin"
    hooked.get_file("big/big.bin", back)
    assert back.read_bytes() == src.read_bytes()
    assert plain.delete("small") and not hooked.exists("small")


def test_a_connection_the_boto3_path_does_not_model_goes_through_the_hook(
    moto_server: MotoServer, s3_bucket: str
) -> None:
    # role_arn means "assume this role first": only the provider does that, so the CLI loads it for such a connection.
    code = (
        "import sys\n"
        "from drflow.connections import read_without_airflow\n"
        "from drflow.store.s3 import S3Store\n"
        "read_without_airflow()\n"
        f"S3Store({s3_bucket!r}, aws_conn_id='role_s3', region='us-east-1').list_keys()\n"
        "print('airflow.providers.amazon.aws.hooks.s3' in sys.modules)\n"
    )
    conn = {
        "conn_type": "aws",
        "login": DUMMY_ACCESS_KEY,
        "password": DUMMY_SECRET_KEY,
        "extra": {
            "role_arn": "arn:aws:iam::123456789012:role/dr",
            "endpoint_url": moto_server.endpoint_url,
            "service_config": {"sts": {"endpoint_url": moto_server.endpoint_url}},
        },
    }
    env = {**os.environ, "AIRFLOW_CONN_ROLE_S3": json.dumps(conn)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    "uri",
    [
        "aws://AKIA%2FX:se%2Fcr%40et@/?region_name=eu-west-1&endpoint_url=http%3A%2F%2F127.0.0.1%3A9000",
        "aws://?__extra__=%7B%22region_name%22%3A+%22us-east-1%22%2C+%22verify%22%3A+false%7D",
        "postgresql://app:pw@db.example.com:6543/users?sslmode=require",
        "http://https://hooks.example.com:8443/services/x",
        "my-type://h/some%2Fschema",
    ],
)
def test_uris_parse_as_airflow_parses_them(uri: str) -> None:
    from airflow.sdk.definitions.connection import Connection

    ours = parse_uri("c", uri)
    theirs = Connection.from_uri(uri, conn_id="c")
    assert (ours.conn_type, ours.host, ours.login, ours.password, ours.schema, ours.port, ours.extra) == (
        theirs.conn_type,
        theirs.host or None,
        theirs.login,
        theirs.password,
        theirs.schema or None,
        theirs.port,
        theirs.extra_dejson,
    )


def test_a_malformed_definition_says_what_forms_work(without_airflow: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BAD_S3", "{not json")
    with pytest.raises(StoreError, match="AIRFLOW_CONN_BAD_S3 is not a connection Airflow can read") as info:
        S3Store("b", aws_conn_id="bad_s3").list_keys()
    assert isinstance(info.value.__cause__, ConnectionDefinitionError)
