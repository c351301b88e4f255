"""pgBackRest: full, differential and incremental physical backups, one repository per storage target.

pgBackRest keeps its own repository and catalog (``<target root>/pgbackrest`` of a local target, the
same path under the prefix of an S3 target), so drflow's store holds only a small record per backup.
It runs on the database host, as the PostgreSQL OS user, next to the data directory; every command
goes through a :class:`~drflow.hosts.Host`. One stanza per component, ``<spec>-<component>``.

The stanza's configuration, the archive and restore commands and S3 access:
:mod:`drflow.engines.postgres.pgbackrest_config`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drflow.engines.postgres.pgbackrest_config import PGBACKREST, PgBackRestError, shell_command
from drflow.hosts import Host, HostError, tail

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

ANNOTATION_BACKUP_ID = "drflow-backup-id"
ANNOTATION_POLICY = "drflow-policy"
COMPRESS_TYPES = {"zstd": "zst", "gzip": "gz", "none": "none"}
BACKUP_TYPES = {"full": "full", "differential": "diff", "incremental": "incr"}
DRFLOW_TYPES = {value: key for key, value in BACKUP_TYPES.items()}
RECOVERY_TYPES = ("default", "immediate", "time", "lsn", "xid", "name")
_LABEL = re.compile(r"^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$")


class PgBackRest:
    """pgBackRest commands of one stanza with one configuration file, run as the database OS user.

    ``--config`` alone makes pgBackRest skip the host's conf.d, so only this file (and ``env``) count.
    """

    def __init__(
        self,
        stanza: str,
        config: Path,
        *,
        host: Host,
        env: Mapping[str, str] | None = None,
        timeout: float | None = 3600,
    ) -> None:
        self.stanza = stanza
        self.config = config
        self.host = host
        self.env = dict(env or {})
        self.timeout = timeout

    def run(self, command: str, *options: str, repo: int | None = None, timeout: float | None = None) -> str:
        argv = [PGBACKREST, f"--config={self.config}", f"--stanza={self.stanza}", "--log-level-file=off"]
        if repo is not None:
            argv.append(f"--repo={repo}")
        argv += [*options, command]
        try:
            result = self.host.run(argv, as_db_user=True, env=self.env, timeout=timeout or self.timeout, check=False)
        except HostError as exc:
            raise PgBackRestError(f"pgbackrest {command} of stanza {self.stanza} did not run: {exc}") from exc
        if result.returncode != 0:
            output = tail("\n".join(part for part in (result.stderr, result.stdout) if part.strip()))
            raise PgBackRestError(
                f"pgbackrest {command} of stanza {self.stanza}"
                + (f" (repo{repo})" if repo else "")
                + f" failed with exit code {result.returncode}:\n{output}\n{_hint(output)}"
            )
        return result.stdout

    def stanza_create(self) -> None:
        """Create the stanza in every repository (does nothing where it exists and matches the server)."""
        self.run("stanza-create", "--log-level-console=warn")

    def check(self) -> None:
        """pgBackRest's own check: the server is reachable and a WAL segment reaches every repository."""
        self.run("check", "--log-level-console=warn")

    def backup(
        self, repo: int, backup_type: str, *, compression: str = "zstd", annotations: Mapping[str, str] | None = None
    ) -> None:
        """``backup --type full|diff|incr`` into one repository (drflow type names are accepted too)."""
        kind = BACKUP_TYPES.get(backup_type, backup_type)
        if kind not in DRFLOW_TYPES:
            raise ValueError(f"unknown backup type {backup_type!r}; use one of {', '.join(BACKUP_TYPES)}")
        if compression not in COMPRESS_TYPES:
            raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESS_TYPES)}")
        options = [f"--type={kind}", f"--compress-type={COMPRESS_TYPES[compression]}", "--log-level-console=info"]
        options += [f"--annotation={key}={value}" for key, value in (annotations or {}).items()]
        output = self.run("backup", *options, repo=repo)
        log.info("pgbackrest backup of %s into repo%d:\n%s", self.stanza, repo, tail(output, 10))

    def info(self, repo: int | None = None) -> dict[str, Any]:
        """The stanza's entry of ``info --output=json`` (every repository, or one)."""
        output = self.run("info", "--output=json", repo=repo, timeout=300)
        try:
            data = json.loads(output)
        except ValueError as exc:
            raise PgBackRestError(f"pgbackrest info printed no JSON ({exc}): {output[:200]!r}") from exc
        entry = next((item for item in data if isinstance(item, dict) and item.get("name") == self.stanza), None)
        if entry is None:
            raise PgBackRestError(f"pgbackrest info does not list stanza {self.stanza}; run stanza-create first")
        return dict(entry)

    def backups(self, repo: int) -> list[dict[str, Any]]:
        """The backups in one repository, oldest first."""
        info = self.info(repo)
        return [b for b in info.get("backup", []) if int(b.get("database", {}).get("repo-key", repo)) == repo]

    def find_backup(
        self, repo: int, *, label: str | None = None, backup_id: str | None = None
    ) -> dict[str, Any] | None:
        """The backup with this label, or the one drflow annotated with this backup id."""
        for backup in reversed(self.backups(repo)):
            if label is not None and backup.get("label") == label:
                return backup
            if backup_id is not None and (backup.get("annotation") or {}).get(ANNOTATION_BACKUP_ID) == backup_id:
                return backup
        return None

    def verify(self, repo: int) -> str:
        """``verify`` of one repository: every backup file and WAL segment against its recorded checksum."""
        return self.run("verify", "--output=text", "--verbose", repo=repo)

    def restore(
        self,
        repo: int,
        target_dir: Path,
        *,
        label: str | None = None,
        recovery_type: str = "default",
        target: str | None = None,
        target_action: str = "promote",
        restore_command: str | None = None,
    ) -> dict[str, str]:
        """Restore into the empty directory ``target_dir`` (made private to the database OS user).

        ``label`` picks the backup set (default: the newest); ``recovery_type`` and ``target`` the
        recovery target (``immediate``: consistent at the end of the backup; ``time``/``lsn``/``xid``/
        ``name`` with ``target``; ``default``: all archived WAL). Archiving stays off on the restored
        server. Returns the recovery settings, for :func:`~drflow.engines.postgres.restore.start_restored`;
        their ``restore_command`` (default: archive-get with this object's configuration, which must
        then outlive the recovery) is :func:`archive_get_command` for the host's installed one.
        """
        if recovery_type not in RECOVERY_TYPES:
            raise ValueError(f"unknown recovery type {recovery_type!r}; use one of {', '.join(RECOVERY_TYPES)}")
        if (target is None) != (recovery_type in ("default", "immediate")):
            raise ValueError(f"recovery type {recovery_type!r} {'needs' if target is None else 'takes no'} a target")
        if label is not None and not _LABEL.match(label):
            raise ValueError(f"{label!r} is not a pgBackRest backup label (like 20261127-020000F)")
        _require_empty(self.host, target_dir)
        self.host.make_private_dir(target_dir)
        options = [f"--pg1-path={target_dir}", "--archive-mode=off", "--log-level-console=info"]
        if label:
            options.append(f"--set={label}")
        if recovery_type != "default":
            options.append(f"--type={recovery_type}")
        if target is not None:
            options.append(f"--target={target}")
        if recovery_type != "default":
            options.append(f"--target-action={target_action}")
        try:
            self.run("restore", *options, repo=repo)
        except PgBackRestError:
            self.host.run(["find", str(target_dir), "-mindepth", "1", "-delete"], check=False)
            raise
        recovery = {
            "restore_command": restore_command
            or shell_command(
                [
                    PGBACKREST,
                    f"--config={self.config}",
                    f"--stanza={self.stanza}",
                    f"--repo={repo}",
                    f"--pg1-path={target_dir}",
                    "archive-get",
                ],
                "%f",
                '"%p"',
            )
        }
        if recovery_type != "default":
            recovery["recovery_target_action"] = target_action
        if recovery_type == "immediate":
            recovery["recovery_target"] = "immediate"
        elif target is not None:
            recovery[f"recovery_target_{recovery_type}"] = target
        return recovery


def timeline_of(wal_segment: str | None) -> int | None:
    """The timeline of a WAL segment name (its first 8 hex digits)."""
    if not wal_segment or len(wal_segment) < 8:
        return None
    try:
        return int(wal_segment[:8], 16)
    except ValueError:
        return None


def _require_empty(host: Host, target_dir: Path) -> None:
    probe = host.run(["find", str(target_dir), "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"], check=False)
    if probe.returncode == 0 and probe.stdout.strip():
        raise PgBackRestError(
            f"restore target {target_dir} is not empty (found {probe.stdout.strip()}); nothing was changed. "
            "Restore into an empty directory, or stop the server there and move its data away first"
        )


def _hint(output: str) -> str:
    text = output.lower()
    if "archive_mode" in text or "archive_command" in text:
        return (
            "hint: the primary must archive through pgBackRest: set archive_mode = on and "
            "archive_command = 'pgbackrest --config=… --stanza=… archive-push %p' (see drflow pgbackrest-config), "
            "then restart it"
        )
    if "archive-timeout" in text or "was not archived before the" in text:
        return "hint: WAL does not reach the repository: check the primary's archive_command and its server log"
    if "unable to find primary cluster" in text or "could not connect" in text or "unable to connect" in text:
        return "hint: is the primary running, and are pg1-port and pg1-socket-path (datastore.pgbackrest) right?"
    if "tls" in text or "certificate" in text:
        return "hint: the S3 endpoint's TLS failed: check its certificate, or the connection's verify setting"
    if "stanza" in text and ("does not exist" in text or "missing" in text):
        return "hint: create the stanza first (the check task runs stanza-create)"
    if "system-id" in text or "database version" in text:
        return (
            "hint: the repository belongs to another cluster (different system identifier or version); "
            "use a new repository path or run stanza-upgrade after a major upgrade"
        )
    if "permission denied" in text:
        return "hint: the database OS user must own the repository directory and read the configuration"
    return "hint: read pgBackRest's message above; `pgbackrest info` shows the state of the repositories"
