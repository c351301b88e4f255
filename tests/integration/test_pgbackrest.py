"""pgBackRest against a real primary that archives through archive-push: two posix repositories, and an
S3 repository on moto behind a TLS-terminating nginx (pgBackRest speaks only HTTPS to S3)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drflow.devtools.sandbox.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.engines.postgres.pgbackrest import ANNOTATION_BACKUP_ID, PgBackRest
from drflow.engines.postgres.pgbackrest_config import (
    PgBackRestError,
    StanzaSettings,
    keys_dir,
    render_config,
    server_settings,
    stanza_settings,
)
from drflow.hosts import Host
from drflow.jobs.pgbackrest import (
    PgBackRestBackupRequest,
    StanzaAccess,
    check_stanza,
    resolve_s3,
    restore_pgbackrest_backup,
    take_pgbackrest_backup,
    verify_pgbackrest_backup,
)
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.pgbackrest import archiving_primary
from tests.fixtures.tls_proxy import TlsProxy, tls_s3_proxy  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}, {{name: us-west-2}}]
storage:
  - {{name: repo-east, type: local, path: {root}/store-east, region: us-east-1}}
  - {{name: repo-west, type: local, path: {root}/store-west, region: us-west-2}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: shop
      primary: {{conn_id: test_pg_primary, region: us-east-1, data_directory: {root}/primary}}
      pgbackrest: {{socket_dir: {root}/run, config: {root}/pgbackrest.conf}}
    backups:
      - {{name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly",
          targets: [repo-east, repo-west], retention: {{days: 14}}}}
      - {{name: daily-diff, type: differential, method: pgbackrest, schedule: "@daily",
          targets: [repo-east, repo-west], retention: {{days: 7}}}}
      - {{name: hourly-incr, type: incremental, method: pgbackrest, schedule: "@hourly",
          targets: [repo-east, repo-west], retention: {{days: 7}}}}
"""
DIGEST = "select md5(string_agg(id::text || ':' || qty, ',' order by id)) from items"


@dataclass
class Archived:
    cluster: LocalCluster
    settings: StanzaSettings
    access: StanzaAccess
    spec_name: str
    targets: list[dict[str, object]]


@pytest.fixture
def archived_primary(pg_workdir: Path, pg_host: Host, pg_bin_dir: Path) -> Iterator[Archived]:
    """A primary whose archive_command pushes to the stanza of the spec, configured as the README says."""
    name = f"pgbr-{uuid.uuid4().hex[:8]}"
    spec = load_spec_text(SPEC.format(name=name, root=pg_workdir), pg_workdir / "spec.yaml").spec
    component = spec.component("orders")
    settings = stanza_settings(spec, component)
    with archiving_primary(pg_workdir, pg_host, pg_bin_dir, settings, rows=2000) as cluster:
        targets = [spec.target(n).model_dump(mode="json") for n in ("repo-east", "repo-west")]
        access = StanzaAccess(settings, cluster.conninfo("shop"))
        yield Archived(cluster, settings, access, name, targets)


def _request(a: Archived, policy: str, kind: str, backup_id: str) -> PgBackRestBackupRequest:
    return PgBackRestBackupRequest(
        spec_name=a.spec_name,
        component="orders",
        policy=policy,
        backup_id=backup_id,
        backup_type=kind,  # type: ignore[arg-type]
        access=a.access,
        targets=a.targets,
        compression="zstd",
        retention_days=7,
        retention_policy="standard",
        validation=[{"name": "digest", "query": DIGEST}],
    )


def _change(a: Archived, sql: str) -> None:
    with psycopg.connect(**a.cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute(sql)


def test_full_diff_incr_into_two_repositories_then_restore_the_incr(
    archived_primary: Archived, pg_host: Host, pg_workdir: Path, pg_bin_dir: Path
) -> None:
    a = archived_primary
    checked = check_stanza(a.access, host=pg_host)
    assert checked["status"] == "no valid backups" and checked["repos"] == {"repo-east": 1, "repo-west": 2}

    full = take_pgbackrest_backup(_request(a, "weekly-full", "full", "b1-full"), host=pg_host)
    _change(a, "update items set qty = qty + 1 where id <= 100")
    diff = take_pgbackrest_backup(_request(a, "daily-diff", "differential", "b2-diff"), host=pg_host)
    _change(a, "delete from items where id > 1900")
    incr = take_pgbackrest_backup(_request(a, "hourly-incr", "incremental", "b3-incr"), host=pg_host)
    # A retried task finds every catalog entry and takes no further pgBackRest backup.
    again = take_pgbackrest_backup(_request(a, "hourly-incr", "incremental", "b3-incr"), host=pg_host)
    assert [m.model_dump() for m in again] == [m.model_dump() for m in incr]
    _change(a, "insert into items values (5000, 1)")  # after the incr: must not be restored

    for (name, catalog), index in zip(target_catalogs(a.spec_name, a.targets), (1, 2), strict=True):
        manifests = catalog.list_backups("orders")
        assert [(m.backup_id, m.backup_type, m.method) for m in manifests] == [
            ("b1-full", "full", "pgbackrest"),
            ("b2-diff", "differential", "pgbackrest"),
            ("b3-incr", "incremental", "pgbackrest"),
        ], name
        assert [m.parent_id for m in manifests] == [None, "b1-full", "b2-diff"]
        assert {m.extra["repo"] for m in manifests} == {index}
        assert all(m.start_lsn and m.end_lsn and m.stored_bytes > 0 for m in manifests)
        assert catalog.verify(manifests[-1]) == []

    info_backups = _info_backups(a, pg_workdir, pg_host)
    for repo in (1, 2):
        listed = [b for b in info_backups if b["database"]["repo-key"] == repo]
        assert [b["type"] for b in listed] == ["full", "diff", "incr"]
        assert [b["annotation"][ANNOTATION_BACKUP_ID] for b in listed] == ["b1-full", "b2-diff", "b3-incr"]
    assert [m.extra["label"] for m in full] != [m.extra["label"] for m in diff]

    verified = verify_pgbackrest_backup(a.access, a.spec_name, "orders", "b3-incr", a.targets, host=pg_host)
    assert set(verified["verified"]) == {"repo-east", "repo-west"}

    # Restore the incremental from the secondary region's repository.
    [(_, west)] = target_catalogs(a.spec_name, a.targets[1:])
    manifest = west.get("orders", "b3-incr")
    restored = restore_pgbackrest_backup(
        a.access,
        manifest,
        pg_workdir / "restored",
        host=pg_host,
        bin_dir=pg_bin_dir,
        socket_dir=pg_workdir / "restored-run",
    )
    try:
        with psycopg.connect(**restored.conninfo("shop").libpq_kwargs()) as conn:
            digest = conn.execute(DIGEST).fetchone()
            count = conn.execute("select count(*) from items").fetchone()
        assert digest is not None and digest[0] == manifest.validation_values["digest"]
        assert count == (1900,)
    finally:
        restored.stop("immediate")


def test_backup_without_archiving_fails_with_what_to_do(pg_workdir: Path, pg_host: Host, pg_bin_dir: Path) -> None:
    name = f"pgbr-{uuid.uuid4().hex[:8]}"
    spec = load_spec_text(SPEC.format(name=name, root=pg_workdir), pg_workdir / "spec.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    cluster = LocalCluster(
        data_dir=pg_workdir / "primary",
        port=free_port(),
        socket_dir=pg_workdir / "run",
        bin_dir=pg_bin_dir,
        host=pg_host,
    )
    cluster.init(no_sync=True)  # no archive_command
    cluster.start(timeout=60)
    try:
        with pytest.raises(PgBackRestError) as caught:
            check_stanza(StanzaAccess(settings, cluster.conninfo()), host=pg_host)
        assert "archive" in str(caught.value) and "hint:" in str(caught.value)
    finally:
        cluster.stop("immediate")


def _info_backups(a: Archived, workdir: Path, host: Host) -> list[dict[str, Any]]:
    config = workdir / "info.conf"
    config.write_text(a.access.config_text())
    host.chown_to_db_user(config)
    return list(PgBackRest(a.settings.stanza, config, host=host).info()["backup"])


S3_SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: s3-east, type: s3, bucket: {bucket}, conn_id: {conn_id}, region: us-east-1, prefix: dr}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: shop
      primary: {{conn_id: test_pg_primary, region: us-east-1, data_directory: {root}/primary}}
      pgbackrest: {{socket_dir: {root}/run, config: {root}/pgbackrest.conf}}
    backups:
      - {{name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly",
          targets: [s3-east], retention: {{days: 14}}}}
"""


def test_s3_repository_through_a_tls_proxy_in_front_of_moto(
    tls_s3_proxy: TlsProxy,  # noqa: F811 (the fixture imported above)
    s3_bucket: str,
    pg_workdir: Path,
    pg_host: Host,
    pg_bin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn_id = "test_pgbr_tls_s3"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": DUMMY_ACCESS_KEY,
                "password": DUMMY_SECRET_KEY,
                "extra": {"endpoint_url": tls_s3_proxy.endpoint_url, "verify": str(tls_s3_proxy.ca_file)},
            }
        ),
    )
    name = f"pgbr-{uuid.uuid4().hex[:8]}"
    text = S3_SPEC.format(name=name, bucket=s3_bucket, conn_id=conn_id, root=pg_workdir)
    spec = load_spec_text(text, pg_workdir / "spec.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    s3 = resolve_s3(settings)
    assert s3["s3-east"].ca_file == str(tls_s3_proxy.ca_file)
    # What the README asks of the database host: the rendered file, and the keys in its conf.d.
    keys = pg_host.make_private_dir(Path(keys_dir(settings))) / "keys.conf"
    keys.write_text(f"[{settings.stanza}]\nrepo1-s3-key={DUMMY_ACCESS_KEY}\nrepo1-s3-key-secret={DUMMY_SECRET_KEY}\n")
    keys.chmod(0o600)
    pg_host.chown_to_db_user(keys)
    with archiving_primary(pg_workdir, pg_host, pg_bin_dir, settings, rows=500, s3=s3) as cluster:
        assert DUMMY_SECRET_KEY not in Path(settings.config_path).read_text()
        access = StanzaAccess(settings, cluster.conninfo("shop"), s3)
        target = spec.target("s3-east").model_dump(mode="json")
        a = Archived(cluster, settings, access, name, [target])
        check_stanza(access, host=pg_host)
        [manifest] = take_pgbackrest_backup(_request(a, "weekly-full", "full", "s3-full"), host=pg_host)
        assert manifest.backup_type == "full" and manifest.extra["repo"] == 1
        # (pgbackrest verify is covered with the posix repositories; the restore reads everything back here)
        restored = restore_pgbackrest_backup(
            access, manifest, pg_workdir / "restored", host=pg_host, bin_dir=pg_bin_dir, socket_dir=pg_workdir / "rr"
        )
        try:
            with psycopg.connect(**restored.conninfo("shop").libpq_kwargs()) as conn:
                assert conn.execute(DIGEST).fetchone() == (manifest.validation_values["digest"],)
        finally:
            restored.stop("immediate")


def test_paths_with_spaces_reach_archive_push_and_archive_get_as_one_argument(
    pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    """The archive_command and restore_command PostgreSQL runs through /bin/sh name the configuration,
    the repositories' data directory and the restore directory under a path with spaces and a `%p` (which
    PostgreSQL would expand unless doubled); the spec refuses shell metacharacters such as `;` outright."""
    root = pg_workdir / "dr root %p=1"
    root.mkdir(mode=0o755)
    name = f"pgbr-{uuid.uuid4().hex[:8]}"
    text = SPEC.format(name=name, root=root).replace(f"socket_dir: {root}/run", f"socket_dir: {pg_workdir}/run")
    spec = load_spec_text(text, pg_workdir / "spec.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    assert " " in settings.config_path and " " in settings.pg_path
    cluster = LocalCluster(
        data_dir=root / "primary", port=free_port(), socket_dir=pg_workdir / "run", bin_dir=pg_bin_dir, host=pg_host
    )
    cluster.init(no_sync=True, **server_settings(settings))
    installed = Path(settings.config_path)
    installed.write_text(render_config(settings, pg_port=cluster.port, pg_user="postgres"))
    pg_host.chown_to_db_user(installed)
    cluster.start(timeout=60)
    try:
        with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
            conn.execute("create database shop")
        with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
            conn.execute("create table items (id int primary key, qty int not null)")
            conn.execute("insert into items select n, n from generate_series(1, 300) n")
            # The server's own archive_command pushed this segment (pgbackrest check waits for it).
        access = StanzaAccess(settings, cluster.conninfo("shop"))
        check_stanza(access, host=pg_host)
        with psycopg.connect(**cluster.conninfo().libpq_kwargs(), autocommit=True) as conn:
            row = conn.execute("select archived_count, failed_count from pg_stat_archiver").fetchone()
        assert row is not None and row[0] >= 1 and row[1] == 0, row
        targets = [spec.target("repo-east").model_dump(mode="json")]
        a = Archived(cluster, settings, access, name, targets)
        [manifest] = take_pgbackrest_backup(_request(a, "weekly-full", "full", "sp-full"), host=pg_host)
        # The backup's WAL is only in the repository: the restored server fetches it with restore_command.
        restored = restore_pgbackrest_backup(
            access, manifest, root / "restored", host=pg_host, bin_dir=pg_bin_dir, socket_dir=pg_workdir / "rr"
        )
        try:
            with psycopg.connect(**restored.conninfo("shop").libpq_kwargs()) as conn:
                assert conn.execute(DIGEST).fetchone() == (manifest.validation_values["digest"],)
        finally:
            restored.stop("immediate")
        assert not (pg_workdir / "pwned").exists() and not Path("pwned").exists()
    finally:
        cluster.stop("immediate")
