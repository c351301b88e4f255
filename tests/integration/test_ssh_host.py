"""Host-side work over SSH against a real sshd on loopback, logging in as a separate user with a key made here.

Through :class:`~drflow.hosts.ssh.SshHost` (the ssh provider's SSHHook from an ``AIRFLOW_CONN_*`` connection):
the runner itself (streams, secrets, timeouts), a tar backup of a tree and its restore, and on clusters owned
by that user a pgBackRest backup, a ``pg_rewind`` rebuild after a failover, and ``fence: stop``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from drflow.engines.postgres.cluster import LocalCluster, create_replica, free_port
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.failover import promote
from drflow.engines.postgres.fence import fence
from drflow.engines.postgres.node import Node, node_health
from drflow.engines.postgres.pgbackrest_config import stanza_settings
from drflow.engines.postgres.rebuild import rebuild_replica
from drflow.hosts import HostError, LocalHost
from drflow.hosts.open import open_host
from drflow.hosts.ssh import SshHost
from drflow.jobs.files import FilesBackupRequest, restore_files, take_files_backup
from drflow.jobs.pgbackrest import (
    PgBackRestBackupRequest,
    StanzaAccess,
    check_stanza,
    take_pgbackrest_backup,
    verify_pgbackrest_backup,
)
from drflow.spec.hosts import SshHostSpec, ssh_conn_of
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.pg import PG_BIN_DIR, pg_workdir_context
from tests.fixtures.pgbackrest import archiving_primary
from tests.fixtures.procs import pids_with_arg, wait_until_gone
from tests.fixtures.sshd import SSH_USER, SshServer, running_sshd

pytestmark = pytest.mark.slow

CONN_ID = "drflow_ssh_test"
SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: store, type: local, path: {root}/store, region: us-east-1}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: shop
      primary:
        conn_id: test_pg_primary
        region: us-east-1
        data_directory: {root}/primary
        host: {{ssh_conn_id: {conn}, db_user: {user}}}
      pgbackrest: {{socket_dir: {root}/run, config: {root}/pgbackrest.conf}}
    backups:
      - {{name: weekly-full, type: full, method: pgbackrest, schedule: "@weekly", targets: [store],
          retention: {{days: 14}}}}
"""


@pytest.fixture
def sshd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SshServer]:
    # pgBackRest's default lock path (/tmp/pgbackrest) belongs to the machine's postgres user: a second
    # database user on one host needs its own, in the host's environment (sshd's SetEnv here).
    lock = Path("/tmp") / f"drflow-ssh-lock-{uuid.uuid4().hex[:8]}"
    with running_sshd(CONN_ID, set_env={"PGBACKREST_LOCK_PATH": str(lock)}) as server:
        lock.mkdir(mode=0o700)
        user = pwd.getpwnam(SSH_USER)
        os.chown(lock, user.pw_uid, user.pw_gid)
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", server.conn_json)
        monkeypatch.setenv("PGBACKREST_LOCK_PATH", str(lock))  # archive-push of servers started from here
        try:
            yield server
        finally:
            shutil.rmtree(lock, ignore_errors=True)


@pytest.fixture
def ssh_host(sshd: SshServer) -> Iterator[SshHost]:
    host = open_host(*ssh_conn_of(SshHostSpec(ssh_conn_id=CONN_ID, db_user=SSH_USER)))
    assert isinstance(host, SshHost)
    with host:
        yield host


def test_commands_stream_keep_secrets_off_command_lines_and_stop_with_the_channel(
    ssh_host: SshHost, sshd: SshServer, tmp_path: Path
) -> None:
    assert ssh_host.run(["id", "-un"]).stdout.strip() == SSH_USER
    assert ssh_host.run(["id", "-un"], as_db_user=True).stdout.strip() == SSH_USER  # login is the db user

    # A secret reaches the command's environment, never a command line on the host.
    token = f"s3cr'et $HOME {uuid.uuid4().hex}"
    seen: list[str] = []
    runner = threading.Thread(
        target=lambda: seen.append(
            ssh_host.run(["sh", "-c", 'sleep 1; printf %s "$DRFLOW_SECRET"'], env={"DRFLOW_SECRET": token}).stdout
        )
    )
    runner.start()
    time.sleep(0.5)
    assert pids_with_arg(token.split()[-1]) == []
    runner.join()
    assert seen == [token]

    # A timeout stops the command on the host, its children too.
    marker = f"drflow-ssh-marker-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with pytest.raises(HostError, match="timed out after 1s"):
        ssh_host.run(["sh", "-c", "sleep 60 & sleep 60", marker], timeout=1)
    assert time.monotonic() - started < 10
    assert wait_until_gone(marker) == []

    # Output is streamed into a file, hashed on the way, never held whole in memory.
    size = 48 * 1024 * 1024
    tracemalloc.start()
    try:
        streamed = ssh_host.run_to_file(["head", "-c", str(size), "/dev/zero"], tmp_path / "zeros")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert streamed.returncode == 0 and streamed.size == size == (tmp_path / "zeros").stat().st_size
    assert streamed.sha256 == hashlib.sha256(bytes(size)).hexdigest()
    assert peak < size // 4, f"{peak} bytes held while streaming {size}"

    # Files on the host: written through a temporary name, read back, missing is None.
    remote = Path("/tmp") / f"drflow-ssh-file-{uuid.uuid4().hex[:8]}"
    try:
        ssh_host.write_text(remote, "port = 5433\n", mode=0o640)
        assert ssh_host.read_text(remote) == "port = 5433\n"
        assert (remote.stat().st_uid, oct(remote.stat().st_mode & 0o777)) == (pwd.getpwnam(SSH_USER).pw_uid, "0o640")
    finally:
        remote.unlink(missing_ok=True)
    assert ssh_host.read_text(remote) is None
    assert sshd.accepted_logins() == 1  # one SSH connection, a channel per command


def test_tree_backup_over_ssh_restores_on_the_worker_with_the_same_digest(sshd: SshServer) -> None:
    with pg_workdir_context(LocalHost()) as root:
        tree = root / "assets"
        (tree / "img" / "deep").mkdir(parents=True)
        for n in range(40):
            (tree / "img" / f"{n}.bin").write_bytes(os.urandom(2000 + n))
        (tree / "img" / "deep" / "conf.txt").write_text("v1\n")
        (tree / "latest").symlink_to("img/1.bin")
        (tree / "private").mkdir(mode=0o750)
        user = pwd.getpwnam(SSH_USER)
        for path in (tree, *tree.rglob("*")):  # the file host's tree belongs to its user
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        name = f"ssh-files-{uuid.uuid4().hex[:6]}"
        targets = [{"name": "store", "type": "local", "path": str(root / "store")}]
        datastore = {"type": "files", "path": str(tree), "host": {"ssh_conn_id": CONN_ID, "db_user": SSH_USER}}

        def backup(backup_id: str, level: str) -> None:
            take_files_backup(
                FilesBackupRequest(
                    spec_name=name,
                    component="assets",
                    policy="daily",
                    backup_id=backup_id,
                    targets=targets,
                    retention_days=7,
                    level=level,  # type: ignore[arg-type]
                    datastore=datastore,
                )
            )

        backup("b1-full", "full")
        (tree / "img" / "deep" / "conf.txt").write_text("v2, longer\n")
        (tree / "img" / "3.bin").unlink()
        backup("b2-incr", "incremental")
        [(_, catalog)] = target_catalogs(name, targets)
        incr = catalog.get("assets", "b2-incr")
        assert incr.backup_type == "incremental" and incr.parent_id == "b1-full"
        assert incr.extra["tree_files"] == 40  # the whole tree's digest, listed on the host
        restored = restore_files(name, "assets", targets, root / "restored", backup_id="b2-incr")
        assert restored.digest_ok is True and restored.chain == ["b1-full", "b2-incr"]
        assert (root / "restored" / "img" / "deep" / "conf.txt").read_text() == "v2, longer\n"
        assert not (root / "restored" / "img" / "3.bin").exists()


def _run(cluster: LocalCluster, sql: str) -> None:
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        conn.execute(sql)


def _count(cluster: LocalCluster) -> int:
    with psycopg.connect(**cluster.conninfo("shop").libpq_kwargs(), autocommit=True) as conn:
        row = conn.execute("select count(*) from items").fetchone()
    assert row is not None
    return int(row[0])


def test_pgbackrest_backup_and_a_pg_rewind_rebuild_over_ssh(sshd: SshServer) -> None:
    db_host = LocalHost(db_user=SSH_USER)  # the clusters belong to the SSH login, as on a database host
    with pg_workdir_context(db_host) as root:
        (root / "store").mkdir()
        os.chown(root / "store", pwd.getpwnam(SSH_USER).pw_uid, -1)  # the repository goes under it
        name = f"ssh-pgbr-{uuid.uuid4().hex[:6]}"
        text = SPEC.format(name=name, root=root, conn=CONN_ID, user=SSH_USER)
        spec = load_spec_text(text, root / "spec.yaml").spec
        settings = stanza_settings(spec, spec.component("orders"))
        assert settings.host == SshHostSpec(ssh_conn_id=CONN_ID, db_user=SSH_USER)
        with archiving_primary(root, db_host, PG_BIN_DIR, settings, rows=500) as primary:
            replica = create_replica(primary, root / "replica", free_port(), "replica_1", socket_dir=root / "run")
            try:
                targets = [spec.target("store").model_dump(mode="json")]
                access = StanzaAccess(settings, primary.conninfo("shop"))
                with contextlib.closing(open_host(*ssh_conn_of(settings.host))) as host:
                    check_stanza(access, host=host)
                    request = PgBackRestBackupRequest(
                        spec_name=name,
                        component="orders",
                        policy="weekly-full",
                        backup_id="b1-full",
                        backup_type="full",
                        access=access,
                        targets=targets,
                        retention_days=14,
                    )
                    [manifest] = take_pgbackrest_backup(request, host=host)
                    verified = verify_pgbackrest_backup(access, name, "orders", "b1-full", targets, host=host)
                assert manifest.method == "pgbackrest" and manifest.extra["repo"] == 1
                assert verified["verified"] == {"store": manifest.extra["label"]}
                repo = root / "store" / "pgbackrest"
                assert repo.stat().st_uid == pwd.getpwnam(SSH_USER).pw_uid  # pgBackRest ran as the SSH login
                assert any((repo / "backup" / settings.stanza).glob(f"{manifest.extra['label']}/backup.manifest"))

                _rebuild_the_old_primary_over_ssh(primary, replica)
            finally:
                replica.stop("immediate")
    assert sshd.accepted_logins() >= 2


def _rebuild_the_old_primary_over_ssh(primary: LocalCluster, replica: LocalCluster) -> None:
    ssh = SshHost(CONN_ID, db_user=SSH_USER)
    with ssh:
        old = Node(name="primary", conn=primary.conninfo(), data_dir=primary.data_dir, host=ssh, bin_dir=PG_BIN_DIR)
        new = Node(name="replica-1", conn=replica.conninfo(), data_dir=replica.data_dir, host=ssh, bin_dir=PG_BIN_DIR)
        _run(primary, "create role replicator with login replication")
        fence(old, "read-only")
        promote(new, fence_node=old, max_lag_s=60)
        _run(primary, "checkpoint")  # the old primary's WAL goes past the fork: pg_rewind has work to do
        _run(replica, "insert into items select n, n from generate_series(501, 600) n")
        replication = PgConnInfo(host="127.0.0.1", port=replica.port, user="replicator")
        rebuilt = rebuild_replica(old, replica.conninfo(), replication=replication, slot="failback_primary", timeout=60)
        assert rebuilt["path"] == "rewind", rebuilt
        assert "no rewind required" not in rebuilt["rewind_output"]
        assert rebuilt["config"]["removed_settings"] == ["default_transaction_read_only = 'on'"]
        health = node_health(old)
        assert health["in_recovery"] and health["wal_receiver"] == "streaming"
        assert _count(primary) == 600
        # fence: stop on the host, proven by pg_ctl status there.
        stopped = fence(old, "stop")
        assert stopped["state"]["state"] == "stopped"
