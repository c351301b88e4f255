"""pgBackRest backups of a component: check, back up into every target's repository, verify.

pgBackRest keeps the backup itself in its repositories; drflow records a small catalog entry per target
(method ``pgbackrest``, the pgBackRest label and repository, LSNs and sizes, and one object with the
backup's ``info`` record and the configuration without secrets), so `drflow backups list` shows it and
the catalog says how to reach the repository again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from drflow.engines.postgres.cluster import LocalCluster, free_port
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.engines.postgres.pgbackrest import (
    ANNOTATION_BACKUP_ID,
    ANNOTATION_POLICY,
    DRFLOW_TYPES,
    PgBackRest,
    timeline_of,
)
from drflow.engines.postgres.pgbackrest_config import (
    PgBackRestError,
    S3Access,
    StandbyPg,
    StanzaSettings,
    archive_get_command,
    cipher_env,
    config_file,
    render_config,
    secret_env,
)
from drflow.engines.postgres.queries import run_validation_queries
from drflow.engines.postgres.restore import start_restored
from drflow.engines.postgres.standby import StandbySource, check_standby_source
from drflow.hosts import Host
from drflow.jobs.request import PolicyBackupRequest
from drflow.store.catalog import Catalog
from drflow.store.factory import target_catalogs
from drflow.store.keys import KeyRef, load_key
from drflow.store.manifest import BackupManifest
from drflow.workdir import scratch_dir

log = logging.getLogger(__name__)

RECORD_OBJECT = "pgbackrest-backup.json"


@dataclass(frozen=True)
class StanzaAccess:
    """Everything a pgBackRest command of one stanza needs at run time."""

    settings: StanzaSettings
    conn: PgConnInfo
    """The primary: its port and role become pg1-port and pg1-user (over the host's socket)."""
    s3: Mapping[str, S3Access] = field(default_factory=dict)
    """By target name, for the S3 repositories."""
    standby: StandbySource | None = None
    """The replica to back up from (backup-standby); None: the primary."""

    def config_text(self) -> str:
        standby = None
        if self.standby is not None and self.standby.data_directory:
            conn = self.standby.conn
            standby = StandbyPg(self.standby.data_directory, conn.port, conn.user)
        return render_config(self.settings, pg_port=self.conn.port, pg_user=self.conn.user, s3=self.s3, standby=standby)

    def env(self) -> dict[str, str]:
        env = secret_env(self.settings, self.s3)
        env.update(cipher_env(self.settings, cipher_passphrases(self.settings)))
        if self.conn.password is not None:
            env["PGPASSWORD"] = self.conn.password
        return env


def cipher_passphrases(settings: StanzaSettings) -> dict[str, str]:
    """The repository cipher passphrase of every encrypted repository: its target's key, from Airflow."""
    passphrases = {}
    for repo in settings.repos:
        key_ref = KeyRef.from_target(repo.target)
        if key_ref is not None:
            passphrases[repo.name] = load_key(key_ref).passphrase
    return passphrases


def resolve_s3(settings: StanzaSettings) -> dict[str, S3Access]:
    """S3 access of every S3 repository, from the targets' Airflow connections."""
    return {
        repo.name: S3Access.from_airflow_conn(str(repo.target["conn_id"]), repo.target.get("region") or None)
        for repo in settings.repos
        if repo.type == "s3"
    }


@contextmanager
def open_stanza(access: StanzaAccess, *, host: Host, work_dir: str | None = None) -> Iterator[PgBackRest]:
    """A :class:`PgBackRest` over a configuration rendered for this run (removed afterwards)."""
    with (
        scratch_dir(work_dir, f"pgbackrest-{access.settings.stanza}") as scratch,
        host.staging_dir(scratch) as there,  # pgBackRest runs as the db user and reads its config here (0700)
        config_file(host, access.config_text(), there) as path,
    ):
        yield PgBackRest(access.settings.stanza, path, host=host, env=access.env())


def prepare_repositories(settings: StanzaSettings, host: Host) -> None:
    """Create the directories of local repositories, owned by the database OS user (S3 needs nothing)."""
    for repo in settings.repos:
        if repo.type == "local":
            host.make_private_dir(Path(repo.path))


def check_stanza(access: StanzaAccess, *, host: Host, work_dir: str | None = None) -> dict[str, Any]:
    """Create the stanza where missing, then pgBackRest's check (archiving reaches every repository)."""
    prepare_repositories(access.settings, host)
    with open_stanza(access, host=host, work_dir=work_dir) as pgbackrest:
        pgbackrest.stanza_create()
        pgbackrest.check()
        info = pgbackrest.info()
    return {
        "stanza": access.settings.stanza,
        "status": (info.get("status") or {}).get("message"),
        "repos": {repo.name: repo.index for repo in access.settings.repos},
        "backups": len(info.get("backup") or []),
    }


@dataclass(frozen=True, kw_only=True)
class PgBackRestBackupRequest(PolicyBackupRequest):
    """``targets``: the policy's targets; each is one repository of the stanza."""

    backup_type: Literal["full", "differential", "incremental"]
    access: StanzaAccess


def take_pgbackrest_backup(request: PgBackRestBackupRequest, *, host: Host) -> list[BackupManifest]:
    """Back up into the repository of every target and record it in that target's catalog.

    Idempotent for one backup id: pgBackRest backups carry the id as an annotation, so a retry backs
    up only into repositories that lack it, and commits only the catalog entries still missing.
    Returns one manifest per target (the pgBackRest label, and even the type, can differ between
    repositories: an incremental into a repository without a full becomes a full).
    """
    catalogs = target_catalogs(request.spec_name, request.targets, lock=request.object_lock())
    committed = [catalog.begin(request.component, request.backup_id) for _, catalog in catalogs]
    if all(manifest is not None for manifest in committed):
        log.info("backup %s is already recorded in every target; nothing to do", request.backup_id)
        return [m for m in committed if m is not None]
    settings = request.access.settings
    standby = None
    if request.access.standby is not None:
        standby = check_standby_source(
            request.access.conn, request.access.standby, policy=request.policy, need_primary=True
        )
    prepare_repositories(settings, host)
    annotations = {ANNOTATION_BACKUP_ID: request.backup_id, ANNOTATION_POLICY: request.policy}
    manifests: list[BackupManifest] = []
    with open_stanza(request.access, host=host, work_dir=request.work_dir) as pgbackrest:
        pgbackrest.stanza_create()
        entries: dict[str, dict[str, Any]] = {}
        for name, _ in catalogs:
            repo = settings.repo(name)
            entry = pgbackrest.find_backup(repo.index, backup_id=request.backup_id)
            if entry is None:
                pgbackrest.backup(
                    repo.index, request.backup_type, compression=request.compression, annotations=annotations
                )
                entry = pgbackrest.find_backup(repo.index, backup_id=request.backup_id)
                if entry is None:
                    raise PgBackRestError(
                        f"pgbackrest backup into repo{repo.index} ({name}) succeeded but info does not show a backup "
                        f"annotated {ANNOTATION_BACKUP_ID}={request.backup_id}; check `pgbackrest info`"
                    )
            else:
                log.info("repo%d (%s) already holds %s (%s)", repo.index, name, request.backup_id, entry["label"])
            entries[name] = entry
        # Recorded right after the backup, like pg_basebackup's (see README: drills).
        source = request.access.standby.conn if request.access.standby is not None else request.access.conn
        validation_values = run_validation_queries(source, request.validation)
        info = pgbackrest.info()
        config_text = request.access.config_text()
    for (name, catalog), existing in zip(catalogs, committed, strict=True):
        if existing is not None:
            manifests.append(existing)
            continue
        manifest = _record(request, catalog, name, entries[name], info, config_text, validation_values)
        if standby is not None:
            manifest.extra.update({"from": standby["replica"], "standby_lag_s": standby["lag_s"]})
        catalog.commit(manifest)
        manifests.append(manifest)
        log.info("recorded pgBackRest backup %s of repo%s in %s", manifest.extra["label"], manifest.extra["repo"], name)
    return manifests


def _record(
    request: PgBackRestBackupRequest,
    catalog: Catalog,
    target: str,
    entry: Mapping[str, Any],
    info: Mapping[str, Any],
    config_text: str,
    validation_values: dict[str, str],
) -> BackupManifest:
    repo = request.access.settings.repo(target)
    by_label = {
        b.get("label"): b for b in info.get("backup") or [] if b.get("database", {}).get("repo-key") == repo.index
    }
    prior = entry.get("prior")
    parent = (by_label.get(prior, {}).get("annotation") or {}).get(ANNOTATION_BACKUP_ID) if prior else None
    database: dict[str, Any] = next((db for db in info.get("db") or [] if db.get("id") == entry["database"]["id"]), {})
    started = datetime.fromtimestamp(int(entry["timestamp"]["start"]), UTC)
    finished = datetime.fromtimestamp(int(entry["timestamp"]["stop"]), UTC)
    record = {
        "stanza": request.access.settings.stanza,
        "repo": repo.index,
        "repo_path": repo.path,
        "backup": entry,
        "config": config_text,
    }
    obj = catalog.put_object_bytes(
        request.component, request.backup_id, RECORD_OBJECT, json.dumps(record, indent=2, sort_keys=True).encode()
    )
    sizes = entry.get("info") or {}
    return BackupManifest(
        backup_id=request.backup_id,
        spec=request.spec_name,
        component=request.component,
        policy=request.policy,
        backup_type=DRFLOW_TYPES[str(entry["type"])],  # type: ignore[arg-type]
        method="pgbackrest",
        parent_id=parent,
        started_at=started,
        finished_at=finished,
        start_lsn=(entry.get("lsn") or {}).get("start"),
        end_lsn=(entry.get("lsn") or {}).get("stop"),
        timeline=timeline_of((entry.get("archive") or {}).get("start")),
        pg_version=str(database["version"]) if database.get("version") else None,
        system_identifier=str(database["system-id"]) if database.get("system-id") else None,
        database_size_bytes=sizes.get("size"),
        compression=request.compression,
        objects=[obj],
        stored_bytes=(sizes.get("repository") or {}).get("delta", obj.size),
        retention_days=request.retention_days,
        retention_policy=request.retention_policy,
        expires_at=finished + timedelta(days=request.retention_days),
        validation_values=validation_values,
        targets=[str(t["name"]) for t in request.targets],
        extra={
            "label": entry["label"],
            "repo": repo.index,
            "stanza": request.access.settings.stanza,
            "prior_label": prior,
            "requested_type": request.backup_type,
            "wal_start": (entry.get("archive") or {}).get("start"),
            "wal_stop": (entry.get("archive") or {}).get("stop"),
            "backed_up_bytes": sizes.get("delta"),
            "repo_size_bytes": (sizes.get("repository") or {}).get("size"),
            "pgbackrest_version": (entry.get("backrest") or {}).get("version"),
            "expiry": "pgBackRest's time retention decides; expires_at is the earliest",
        },
    )


def verify_pgbackrest_backup(
    access: StanzaAccess,
    spec_name: str,
    component: str,
    backup_id: str,
    targets: Sequence[Mapping[str, Any]],
    *,
    host: Host,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """pgBackRest's ``verify`` of every target's repository, the backup listed there without error,
    and the catalog record's checksum. Raises :class:`PgBackRestError` with every problem found."""
    problems: list[str] = []
    verified: dict[str, str] = {}
    with open_stanza(access, host=host, work_dir=work_dir) as pgbackrest:
        for name, catalog in target_catalogs(spec_name, targets):
            manifest = catalog.get(component, backup_id)
            problems += [f"{name}: {problem}" for problem in catalog.verify(manifest)]
            label, repo = str(manifest.extra["label"]), int(manifest.extra["repo"])
            entry = pgbackrest.find_backup(repo, label=label)
            if entry is None:
                problems.append(f"{name}: repo{repo} no longer lists backup {label} (expired or removed?)")
                continue
            if entry.get("error"):
                problems.append(f"{name}: pgBackRest found page checksum errors in backup {label}")
            try:
                log.info("verify of repo%d (%s):\n%s", repo, name, pgbackrest.verify(repo))
            except PgBackRestError as exc:
                problems.append(f"{name}: {exc}")
                continue
            verified[name] = label
    if problems:
        raise PgBackRestError(
            f"backup {backup_id} of {spec_name}/{component} did not verify:\n"
            + "\n".join(problems)
            + "\nDo not rely on it: run the backup again (a full one), and check the repository."
        )
    return {"backup_id": backup_id, "verified": verified}


def restore_pgbackrest_backup(
    access: StanzaAccess,
    manifest: BackupManifest,
    target_dir: Path,
    *,
    host: Host,
    bin_dir: Path,
    socket_dir: Path,
    port: int | None = None,
    work_dir: str | None = None,
) -> LocalCluster:
    """Restore a recorded pgBackRest backup into the empty ``target_dir`` and start it on its own port.

    The server recovers to the end of that backup (consistent, then promoted), fetching the WAL it
    needs from the repository through the host's installed configuration (and S3 keys), like
    archive-push; archiving stays off, so it never writes into the stanza.
    """
    if manifest.method != "pgbackrest":
        raise PgBackRestError(f"backup {manifest.backup_id} was taken with {manifest.method}, not pgBackRest")
    label, repo = str(manifest.extra["label"]), int(manifest.extra["repo"])
    with open_stanza(access, host=host, work_dir=work_dir) as pgbackrest:
        restore_command = archive_get_command(access.settings, repo, target_dir)
        recovery = pgbackrest.restore(
            repo, target_dir, label=label, recovery_type="immediate", restore_command=restore_command
        )
    return start_restored(
        target_dir, port=port or free_port(), socket_dir=socket_dir, bin_dir=bin_dir, host=host, recovery=recovery
    )
