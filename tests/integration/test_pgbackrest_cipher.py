"""pgBackRest with an encrypted repository: repo-cipher-type rendered from the target's client_encryption, the
passphrase (the target's key from Airflow) only in the environment of drflow's commands and in the host's
conf.d for archive-push; a real primary backed up and restored, the repository unreadable without the key."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import psycopg
import pytest

from drflow.engines.postgres.pgbackrest_config import keys_dir, render_config, stanza_settings
from drflow.hosts import Host
from drflow.jobs.pgbackrest import (
    PgBackRestBackupRequest,
    StanzaAccess,
    check_stanza,
    restore_pgbackrest_backup,
    take_pgbackrest_backup,
)
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.pgbackrest import archiving_primary

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
metadata: {{name: {name}, owner: test-team}}
regions: [{{name: us-east-1, role: primary}}]
storage:
  - {{name: repo-east, type: local, path: {root}/store-east, region: us-east-1,
      client_encryption: {{key_variable: drflow_test_repo_key}}}}
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
          targets: [repo-east], retention: {{days: 14}}}}
"""


def test_an_encrypted_repository_backs_up_and_restores_and_holds_no_plain_text(
    pg_workdir: Path, pg_host: Host, pg_bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("AIRFLOW_VAR_DRFLOW_TEST_REPO_KEY", key)
    name = f"pgbrc-{uuid.uuid4().hex[:8]}"
    spec = load_spec_text(SPEC.format(name=name, root=pg_workdir), pg_workdir / "spec.yaml").spec
    settings = stanza_settings(spec, spec.component("orders"))
    rendered = render_config(settings, pg_port=5432, pg_user="postgres")
    assert "repo1-cipher-type=aes-256-cbc" in rendered and key not in rendered
    # What the README asks of the database host, for archive-push and archive-get.
    conf_d = Path(keys_dir(settings))
    pg_host.make_private_dir(conf_d)
    keys_file = conf_d / "cipher.conf"
    keys_file.write_text(f"[{settings.stanza}]\nrepo1-cipher-pass={key}\n")
    keys_file.chmod(0o600)
    pg_host.chown_to_db_user(keys_file)

    targets = [spec.target("repo-east").model_dump(mode="json")]
    with archiving_primary(pg_workdir, pg_host, pg_bin_dir, settings, rows=3000) as cluster:
        access = StanzaAccess(settings, cluster.conninfo("shop"))
        assert "PGBACKREST_REPO1_CIPHER_PASS" in access.env()
        check_stanza(access, host=pg_host)
        [manifest] = take_pgbackrest_backup(
            PgBackRestBackupRequest(
                spec_name=name,
                component="orders",
                policy="weekly-full",
                backup_id="b1-full",
                backup_type="full",
                access=access,
                targets=targets,
                compression="zstd",
                retention_days=14,
                retention_policy="standard",
                validation=[],
            ),
            host=pg_host,
        )
        info = Path(settings.repos[0].path, "backup", settings.stanza, "backup.info").read_bytes()
        assert info.startswith(b"Salted__") and b"[backup:current]" not in info  # pgBackRest encrypted it

    [(_, catalog)] = target_catalogs(name, targets)
    restored = restore_pgbackrest_backup(
        access,
        catalog.get("orders", manifest.backup_id),
        pg_workdir / "restored",
        host=pg_host,
        bin_dir=pg_bin_dir,
        socket_dir=pg_workdir / "restored-run",
    )
    try:
        with psycopg.connect(**restored.conninfo("shop").libpq_kwargs()) as conn:
            assert conn.execute("select count(*) from items").fetchone() == (3000,)
    finally:
        restored.stop("immediate")
