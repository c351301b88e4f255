"""The PostgreSQL engine against real PostgreSQL 15 servers: backup, lay out, verify, restore, replicas."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from drflow.devtools.sandbox import postgres as sandbox_pg
from drflow.engines.postgres.basebackup import BackupError, BaseBackupResult, run_basebackup
from drflow.engines.postgres.cluster import LocalCluster, free_port, write_settings
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.restore import RestoreError, lay_out_backup, start_restored, verify_data_dir
from drflow.hosts import Host, HostError, LocalHost
from tests.fixtures.pg import pg_workdir_context, running_cluster

ROWS_DIGEST = "SELECT count(*), md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) FROM items"
SYSID = "SELECT system_identifier FROM pg_control_system()"


def query_one(conninfo: PgConnInfo, sql: str) -> tuple[object, ...]:
    with psycopg.connect(**conninfo.libpq_kwargs(), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


@dataclass(frozen=True)
class TakenBackup:
    result: BaseBackupResult
    rows_digest: tuple[object, ...]
    system_identifier: int


@pytest.fixture(scope="module")
def taken_backup(pg_host: Host, pg_bin_dir: Path) -> Iterator[TakenBackup]:
    """One zstd backup of a primary holding 10k rows, shared by the read-only tests below."""
    with (
        pg_workdir_context(pg_host, pg_bin_dir) as workdir,
        running_cluster(workdir, "primary", pg_host, pg_bin_dir) as primary,
    ):
        with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 10000) g"
            )
        digest = query_one(primary.conninfo(), ROWS_DIGEST)
        sysid = int(str(query_one(primary.conninfo(), SYSID)[0]))
        result = run_basebackup(primary.conninfo(), workdir / "staging", bin_dir=pg_bin_dir, label="test full")
        primary.stop("fast")
        yield TakenBackup(result, digest, sysid)


# --- no server needed -------------------------------------------------------------------------


def test_conninfo_keeps_the_password_out_of_dsn_and_repr() -> None:
    info = PgConnInfo(host="db.example", port=5433, user="backup", password="s3cret pw", dbname="app")
    assert "s3cret" not in info.dsn()
    assert "s3cret" not in repr(info)
    assert info.env()["PGPASSWORD"] == "s3cret pw"
    assert info.libpq_kwargs()["password"] == "s3cret pw"
    assert info.with_dbname("other").dbname == "other"
    assert "dbname=other" in info.with_dbname("other").dsn()


@pytest.mark.slow  # importing airflow.sdk takes seconds
def test_conninfo_from_airflow_connection_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DRFLOW_TEST_PG", "postgresql://backup:p%40ss@db.example:6543/app?sslmode=require")
    info = PgConnInfo.from_airflow_conn("drflow_test_pg")
    assert (info.host, info.port, info.user, info.password, info.dbname) == (
        "db.example",
        6543,
        "backup",
        "p@ss",
        "app",
    )
    assert info.options == {"sslmode": "require"}
    assert PgConnInfo.from_airflow_conn("drflow_test_pg", dbname="postgres").dbname == "postgres"


def test_write_settings_replaces_earlier_assignments(tmp_path: Path) -> None:
    conf = tmp_path / "postgresql.auto.conf"
    conf.write_text("# comment\nport = 5432\nwork_mem = '4MB'\n")
    write_settings(conf, {"port": 6000, "primary_conninfo": "host=x password='it''s'", "hot_standby": True})
    lines = conf.read_text().splitlines()
    assert lines == [
        "# comment",
        "work_mem = '4MB'",
        "port = 6000",
        "primary_conninfo = 'host=x password=''it''''s'''",
        "hot_standby = on",
    ]
    with pytest.raises(ValueError):
        write_settings(conf, {"bad name": 1})
    with pytest.raises(ValueError):
        write_settings(conf, {"x": "two\nlines"})


def test_local_host_errors_carry_the_command_and_stderr() -> None:
    host = LocalHost()
    with pytest.raises(HostError, match=r"(?s)exit code 2: ls /nonexistent-drflow.*No such file"):
        host.run(["ls", "/nonexistent-drflow"])
    assert host.run(["ls", "/nonexistent-drflow"], check=False).returncode == 2


def test_backup_of_unreachable_server_fails_cleanly(tmp_path: Path, pg_bin_dir: Path) -> None:
    conn = PgConnInfo(host="127.0.0.1", port=free_port(), user="postgres")
    staging = tmp_path / "staging"
    with pytest.raises(BackupError, match="is the primary reachable"):
        run_basebackup(conn, staging, bin_dir=pg_bin_dir, label="x")
    assert not staging.exists()


def test_backup_refuses_a_staging_dir_with_foreign_files(tmp_path: Path, pg_bin_dir: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "notes.txt").write_text("mine")
    conn = PgConnInfo(host="127.0.0.1", port=free_port(), user="postgres")
    with pytest.raises(BackupError, match="notes.txt"):
        run_basebackup(conn, staging, bin_dir=pg_bin_dir, label="x")
    assert (staging / "notes.txt").read_text() == "mine"


# --- one shared backup ------------------------------------------------------------------------


@pytest.mark.slow
def test_backup_result_describes_the_backup(taken_backup: TakenBackup) -> None:
    result = taken_backup.result
    assert set(result.files) == {"base.tar.zst", "pg_wal.tar.zst", "backup_manifest"}
    assert result.timeline == 1
    assert result.start_lsn.count("/") == 1 and result.end_lsn.count("/") == 1
    assert result.server_version.startswith("15.")
    assert 150000 <= result.server_version_num < 160000
    assert result.system_identifier == taken_backup.system_identifier
    assert result.started_at < result.finished_at and result.duration_s > 0
    assert result.compressed_bytes == sum(p.stat().st_size for p in result.files.values())
    assert 0 < result.compressed_bytes < result.database_size_bytes
    assert result.to_dict()["files"]["backup_manifest"].endswith("backup_manifest")


@pytest.mark.slow
def test_restored_server_has_the_same_rows(
    taken_backup: TakenBackup, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    target = pg_workdir / "restored"
    lay_out_backup(taken_backup.result.files, target, host=pg_host, bin_dir=pg_bin_dir)
    assert (target / "pg_wal").is_dir() and oct(target.stat().st_mode & 0o777) == "0o700"
    cluster = start_restored(target, port=free_port(), socket_dir=pg_workdir / "run", bin_dir=pg_bin_dir, host=pg_host)
    try:
        info = cluster.conninfo()
        assert query_one(info, ROWS_DIGEST) == taken_backup.rows_digest
        assert int(str(query_one(info, SYSID)[0])) == taken_backup.system_identifier
        assert query_one(info, "SELECT pg_is_in_recovery()") == (False,)
        assert query_one(info, "INSERT INTO items VALUES (10001, 'new') RETURNING id") == (10001,)
    finally:
        cluster.stop("immediate")


def test_lay_out_refuses_a_non_empty_target(
    taken_backup: TakenBackup, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    target = pg_workdir / "occupied"
    target.mkdir()
    (target / "precious.txt").write_text("do not touch")
    with pytest.raises(RestoreError, match="not empty.*nothing was changed"):
        lay_out_backup(taken_backup.result.files, target, host=pg_host, bin_dir=pg_bin_dir)
    assert [p.name for p in target.iterdir()] == ["precious.txt"]


@pytest.mark.slow
def test_verifybackup_catches_a_tampered_file(
    taken_backup: TakenBackup, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    target = pg_workdir / "restored"
    lay_out_backup(taken_backup.result.files, target, host=pg_host, bin_dir=pg_bin_dir)
    victim = max((p for p in (target / "base").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with victim.open("r+b") as fh:  # same size, different bytes: only the checksum can tell
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    relative = str(victim.relative_to(target))
    with pytest.raises(RestoreError, match=rf"(?s)pg_verifybackup found problems.*{relative}"):
        verify_data_dir(target, host=pg_host, bin_dir=pg_bin_dir)


def test_corrupt_archive_is_rejected_leaving_no_directory_it_created(
    taken_backup: TakenBackup, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    copies = pg_workdir / "copies"
    copies.mkdir()
    files = {name: Path(shutil.copy(path, copies / name)) for name, path in taken_backup.result.files.items()}
    base = files["base.tar.zst"]
    base.write_bytes(base.read_bytes()[: base.stat().st_size // 2])
    target = pg_workdir / "restored"
    with pytest.raises(RestoreError, match="removed again"):
        lay_out_backup(files, target, host=pg_host, bin_dir=pg_bin_dir)
    assert not target.exists()  # a refused restore leaves no directory it created
    target.mkdir()
    with pytest.raises(RestoreError, match="emptied again"):  # one that was there stays, empty
        lay_out_backup(files, target, host=pg_host, bin_dir=pg_bin_dir)
    assert target.is_dir() and not any(target.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_other_compressions_lay_out_and_verify(
    compression: str, pg_primary: LocalCluster, pg_workdir: Path, pg_host: Host, pg_bin_dir: Path
) -> None:
    result = run_basebackup(
        pg_primary.conninfo(), pg_workdir / "staging", bin_dir=pg_bin_dir, label="x", compression=compression
    )
    suffix = {"gzip": ".tar.gz", "none": ".tar"}[compression]
    assert f"base{suffix}" in result.files
    lay_out_backup(result.files, pg_workdir / "restored", host=pg_host, bin_dir=pg_bin_dir)


# --- failures and replicas --------------------------------------------------------------------


@pytest.mark.slow
def test_primary_killed_mid_backup_raises_and_leaves_no_staging(
    pg_primary: LocalCluster, pg_workdir: Path, pg_bin_dir: Path
) -> None:
    info = pg_primary.conninfo()
    with psycopg.connect(**info.libpq_kwargs(), autocommit=True) as conn:
        # ~100 MB: rows under the TOAST threshold are stored uncompressed.
        conn.execute(
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, 100000) g"
        )
    staging = pg_workdir / "staging"
    outcome: list[BaseException | BaseBackupResult] = []

    def backup() -> None:
        try:
            # Throttled so that the backup is surely still running when the primary dies.
            outcome.append(
                run_basebackup(info, staging, bin_dir=pg_bin_dir, label="doomed", max_rate="32M", timeout=120)
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=backup)
    worker.start()
    deadline = time.monotonic() + 30
    streamed = 0
    while streamed < 10 * 2**20 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.05)
        row = query_one(info, "SELECT coalesce(max(backup_streamed), 0) FROM pg_stat_progress_basebackup")
        streamed = int(str(row[0]))
    assert streamed >= 10 * 2**20, "the backup never got going"
    pg_primary.stop("immediate")
    worker.join(60)

    assert len(outcome) == 1 and isinstance(outcome[0], BackupError), outcome
    assert "pg_basebackup" in str(outcome[0]) and "hint:" in str(outcome[0])
    assert not staging.exists()


@pytest.mark.slow
def test_replica_streams_from_the_primary(pg_primary_with_replica: tuple[LocalCluster, LocalCluster]) -> None:
    primary, replica = pg_primary_with_replica
    with psycopg.connect(**primary.conninfo().libpq_kwargs(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT 42 AS answer")
    row = query_one(
        primary.conninfo(),
        "SELECT application_name, state FROM pg_stat_replication WHERE application_name = 'test_replica'",
    )
    assert row == ("test_replica", "streaming")
    assert query_one(primary.conninfo(), "SELECT active FROM pg_replication_slots") == (True,)
    assert query_one(replica.conninfo(), "SELECT pg_is_in_recovery()") == (True,)
    deadline = time.monotonic() + 15
    while True:
        try:
            assert query_one(replica.conninfo(), "SELECT answer FROM t") == (42,)
            break
        except psycopg.errors.UndefinedTable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_sandbox_up_is_idempotent_and_down_stops_it(pg_workdir: Path, pg_bin_dir: Path) -> None:
    root = pg_workdir / "sandbox" / "pg"
    primary_port, replica_port = free_port(), free_port()
    state = sandbox_pg.up(root, primary_port, replica_port, bin_dir=pg_bin_dir)
    assert state["primary"]["running"] and state["replica"]["running"]
    assert (state["primary"]["port"], state["replica"]["port"]) == (primary_port, replica_port)
    assert state["replica"]["in_recovery"] is True
    assert [(r["application_name"], r["sync_state"]) for r in state["replication"]] == [(sandbox_pg.SLOT_NAME, "sync")]

    pids = {name: (root / name / "postmaster.pid").read_text().split()[0] for name in ("primary", "replica")}
    sandbox_pg.up(root, primary_port, replica_port, bin_dir=pg_bin_dir)
    assert pids == {n: (root / n / "postmaster.pid").read_text().split()[0] for n in ("primary", "replica")}

    assert sandbox_pg.down(root)["stopped"] == ["replica", "primary"]
    after = sandbox_pg.status(root)
    assert not after["primary"]["running"] and not after["replica"]["running"]

    # Restart from the kept data, then purge.
    again = sandbox_pg.up(root, primary_port, replica_port, bin_dir=pg_bin_dir)
    assert again["primary"]["running"] and again["replica"]["running"]
    assert sandbox_pg.down(root, purge=True)["purged"]
    assert not root.exists()
