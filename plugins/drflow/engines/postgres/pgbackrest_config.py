"""pgBackRest stanza settings from the spec, the ``pgbackrest.conf`` drflow renders, and S3 access.

What the database host needs (see README, "pgBackRest"): the pgbackrest package, the configuration
``drflow pgbackrest-config`` renders, installed where the spec's ``datastore.pgbackrest.config``
says, and the primary configured with ``archive_mode = on`` and :func:`archive_command`, so every WAL
segment reaches every repository. The configuration never holds S3 keys: drflow's own commands get
them from the target's Airflow connection through ``PGBACKREST_REPO<n>_S3_KEY*`` environment
variables; archive-push on the server reads them from a file of the host's ``conf.d`` (mode 600).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from drflow.engines.postgres.cluster import format_setting
from drflow.hosts import Host
from drflow.spec.hosts import HostSpec, host_from_params, host_params

if TYPE_CHECKING:
    from drflow.spec.model import Component, Spec

PGBACKREST = "pgbackrest"
REPO_DIR = "pgbackrest"
"""The repository's directory under a storage target's root (a local path, or an S3 prefix)."""


class PgBackRestError(RuntimeError):
    """A pgBackRest command failed or its repository is not what drflow expects; the message says what to do."""


@dataclass(frozen=True)
class Repo:
    """One pgBackRest repository: a storage target of the spec, numbered as pgBackRest's ``repo<index>``."""

    index: int
    target: Mapping[str, Any]
    retention_days: int

    @property
    def name(self) -> str:
        return str(self.target["name"])

    @property
    def type(self) -> str:
        return str(self.target["type"])

    @property
    def encrypted(self) -> bool:
        """The target asks for client-side encryption: pgBackRest encrypts the repository itself."""
        return bool(self.target.get("client_encryption"))

    @property
    def path(self) -> str:
        """The repository path: a directory for local targets, the key prefix (with a leading /) in S3."""
        if self.type == "local":
            return str(Path(str(self.target["path"])) / REPO_DIR)
        prefix = str(self.target.get("prefix") or "").strip("/")
        return f"/{prefix}/{REPO_DIR}" if prefix else f"/{REPO_DIR}"


@dataclass(frozen=True)
class StandbyPg:
    """The replica pgBackRest copies the files of (backup-standby), on the primary's host."""

    pg_path: str
    port: int
    user: str


@dataclass(frozen=True)
class StanzaSettings:
    """What the spec says about a component's stanza: plain JSON in plan parameters (:meth:`to_params`)."""

    stanza: str
    pg_path: str
    socket_dir: str
    config_path: str
    """Where the rendered configuration is installed on the database host (archive_command names it)."""
    repos: tuple[Repo, ...]
    host: HostSpec = "local"
    """The primary's host, where pgBackRest runs: the worker, or a host over SSH."""

    def repo(self, target_name: str) -> Repo:
        for repo in self.repos:
            if repo.name == target_name:
                return repo
        known = ", ".join(repo.name for repo in self.repos)
        raise PgBackRestError(
            f"storage target {target_name!r} is not a repository of stanza {self.stanza} (repositories: {known}); "
            "render the configuration again from the current spec"
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "stanza": self.stanza,
            "pg_path": self.pg_path,
            "socket_dir": self.socket_dir,
            "config_path": self.config_path,
            "repos": [
                {"index": r.index, "target": dict(r.target), "retention_days": r.retention_days} for r in self.repos
            ],
            "host": host_params(self.host),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StanzaSettings:
        return cls(
            stanza=str(params["stanza"]),
            pg_path=str(params["pg_path"]),
            socket_dir=str(params["socket_dir"]),
            config_path=str(params["config_path"]),
            repos=tuple(Repo(int(r["index"]), dict(r["target"]), int(r["retention_days"])) for r in params["repos"]),
            host=host_from_params(params.get("host")),
        )


def stanza_name(spec_name: str, component: str) -> str:
    return f"{spec_name}-{component}"


def stanza_settings(spec: Spec, component: Component) -> StanzaSettings:
    """The component's stanza: one repository per storage target of its pgbackrest policies, in spec order.

    A repository shared by several policies keeps full backups as long as the longest retention asks.
    """
    retention: dict[str, int] = {}
    for policy in component.backup_policies:
        if policy.method != "pgbackrest":
            continue
        for target in policy.targets:
            retention[target] = max(retention.get(target, 0), policy.retention.days)
    if not retention:
        raise PgBackRestError(
            f"component {component.name!r} has no backup policy of method pgbackrest; "
            "add one (method: pgbackrest, type: full|differential|incremental) to give it a stanza"
        )
    datastore = component.postgres
    if datastore is None or not datastore.primary.data_directory:
        raise PgBackRestError(
            f"component {component.name!r} needs datastore.primary.data_directory for pgBackRest; "
            "set it in the spec (drflow validate reports this too)"
        )
    repos = tuple(
        Repo(index, spec.target(name).model_dump(mode="json"), days)
        for index, (name, days) in enumerate(retention.items(), start=1)
    )
    return StanzaSettings(
        stanza=stanza_name(spec.metadata.name, component.name),
        pg_path=datastore.primary.data_directory,
        socket_dir=datastore.pgbackrest.socket_dir,
        config_path=datastore.pgbackrest.config,
        repos=repos,
        host=datastore.primary.host,
    )


@dataclass(frozen=True)
class S3Access:
    """How to reach an S3 repository at run time, from the target's Airflow connection.

    The endpoint is not secret and goes into the configuration; the keys travel only in the
    environment of drflow's pgBackRest commands (:func:`secret_env`).
    """

    endpoint: str | None = None
    """Host of a custom endpoint (MinIO, a TLS proxy in front of moto); None for AWS."""
    port: int | None = None
    verify_tls: bool = True
    ca_file: str | None = None
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_endpoint_url(
        cls,
        url: str | None,
        verify: object = None,
        *,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
    ) -> S3Access:
        if not url:
            return cls(key=key, secret=secret, token=token)
        parts = urlsplit(url if "://" in url else f"https://{url}")
        if parts.scheme != "https":
            raise PgBackRestError(
                f"pgBackRest speaks only HTTPS to S3, but the endpoint is {url}; "
                "put a TLS-terminating proxy in front of it and use its https:// URL, or use a local repository"
            )
        if parts.path not in ("", "/"):
            raise PgBackRestError(f"S3 endpoint {url} has a path; pgBackRest needs scheme://host[:port] only")
        return cls(
            endpoint=parts.hostname,
            port=parts.port,
            verify_tls=verify is not False,
            ca_file=verify if isinstance(verify, str) and verify else None,
            key=key,
            secret=secret,
            token=token,
        )

    @classmethod
    def from_airflow_conn(cls, conn_id: str, region: str | None = None, *, credentials: bool = True) -> S3Access:
        """Endpoint, TLS verification and (unless ``credentials`` is false) the keys of an Airflow aws
        connection, in any form the amazon provider reads (keys, a profile, an assumed role …)."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3", region_name=region)
        config = hook.conn_config
        endpoint = config.get_service_endpoint_url("s3")
        if not credentials:
            return cls.from_endpoint_url(endpoint, config.verify)
        keys = hook.get_credentials(region_name=region)
        return cls.from_endpoint_url(
            endpoint, config.verify, key=keys.access_key, secret=keys.secret_key, token=keys.token
        )


def keys_dir(settings: StanzaSettings) -> str:
    """The include directory (next to the configuration) where the host keeps S3 keys for archive-push."""
    return str(Path(settings.config_path).parent / "conf.d")


def _config_options(settings: StanzaSettings) -> list[str]:
    """``--config`` (and ``--config-include-path`` when S3 keys live in conf.d): the host's installed configuration."""
    options = [f"--config={settings.config_path}"]
    if any(r.type == "s3" or r.encrypted for r in settings.repos):
        # An explicit --config makes pgBackRest skip the include directory unless it is named too.
        options.append(f"--config-include-path={keys_dir(settings)}")
    return options


def shell_command(argv: Sequence[str], *placeholders: str) -> str:
    """A command line for a server setting that PostgreSQL runs through ``/bin/sh`` (archive_command,
    restore_command): every argument shell-quoted, so a path or name from the spec (a space, a ``;``)
    stays one argument and never becomes shell syntax; then the server's ``%`` placeholders, bare."""
    quoted = [shlex.quote(arg.replace("%", "%%")) for arg in argv]
    return " ".join([*quoted, *placeholders])


def archive_command(settings: StanzaSettings) -> str:
    return shell_command([PGBACKREST, *_config_options(settings), f"--stanza={settings.stanza}", "archive-push"], "%p")


def server_settings(settings: StanzaSettings) -> dict[str, str]:
    """What the primary's postgresql.conf needs for pgBackRest (archive_mode takes a restart)."""
    return {"archive_mode": "on", "archive_command": archive_command(settings)}


def archive_get_command(settings: StanzaSettings, repo: int, pg_path: Path) -> str:
    """restore_command of a server restored into ``pg_path``, through the host's installed configuration
    (and its S3 keys) like archive-push; pgBackRest checks that it runs in pg1-path."""
    return shell_command(
        [
            PGBACKREST,
            *_config_options(settings),
            f"--stanza={settings.stanza}",
            f"--repo={repo}",
            f"--pg1-path={pg_path}",
            "archive-get",
        ],
        "%f",
        '"%p"',
    )


def render_config(
    settings: StanzaSettings,
    *,
    pg_port: int,
    pg_user: str,
    s3: Mapping[str, S3Access] | None = None,
    source: str | None = None,
    standby: StandbyPg | None = None,
) -> str:
    """The pgbackrest.conf of one stanza. Never holds a key: see :func:`secret_env`.

    ``s3`` (by target name) gives the endpoints of S3 repositories that are not AWS's. ``standby`` adds the
    replica a backup is taken from as ``pg2`` (its socket in the same directory) with ``backup-standby=y``.
    """
    s3 = s3 or {}
    origin = f" from {source}" if source else ""
    lines = [
        f"# pgBackRest configuration of stanza {settings.stanza}, rendered by drflow{origin}.",
        "# Do not edit: render it again with `drflow pgbackrest-config` after the spec changes.",
        f"# Install it as {settings.config_path} on the database host. The primary needs:",
        *(f"#   {name} = {format_setting(value)}" for name, value in server_settings(settings).items()),
    ]
    s3_repos = [repo for repo in settings.repos if repo.type == "s3"]
    if s3_repos:
        lines += [
            "# S3 keys are not written here. For archive-push, put them into a *.conf file of",
            f"# {keys_dir(settings)} readable only by the database OS user (mode 600), under [{settings.stanza}]:",
            *(
                f"#   repo{repo.index}-s3-key=… and repo{repo.index}-s3-key-secret=…  (storage target {repo.name})"
                for repo in s3_repos
            ),
        ]
    encrypted = [repo for repo in settings.repos if repo.encrypted]
    if encrypted:
        lines += [
            "# Cipher passphrases are not written here either: drflow's commands take them from the target's",
            f"# key in Airflow; for archive-push put them into a *.conf file of {keys_dir(settings)} (mode 600):",
            *(
                f"#   repo{repo.index}-cipher-pass=<the key, base64>  (storage target {repo.name})"
                for repo in encrypted
            ),
        ]
    lines += [
        "",
        "[global]",
        "start-fast=y",
        "",
        f"[{settings.stanza}]",
        f"pg1-path={settings.pg_path}",
        f"pg1-port={pg_port}",
        f"pg1-socket-path={settings.socket_dir}",
        f"pg1-user={pg_user}",
    ]
    if standby is not None:
        lines += [
            f"pg2-path={standby.pg_path}",
            f"pg2-port={standby.port}",
            f"pg2-socket-path={settings.socket_dir}",
            f"pg2-user={standby.user}",
            "backup-standby=y",
        ]
    for repo in settings.repos:
        lines += ["", f"# storage target {repo.name}", *_repo_options(repo, s3.get(repo.name))]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise PgBackRestError(f"a configuration value holds a line break: {line!r}; fix the spec value")
    return "\n".join(lines) + "\n"


def _repo_options(repo: Repo, access: S3Access | None) -> list[str]:
    n = f"repo{repo.index}"
    options = [f"{n}-type={'posix' if repo.type == 'local' else 's3'}", f"{n}-path={repo.path}"]
    if repo.type == "s3":
        region = str(repo.target["region"])
        options += [f"{n}-s3-bucket={repo.target['bucket']}", f"{n}-s3-region={region}"]
        if access is not None and access.endpoint:
            # Custom endpoints (MinIO, a proxy) rarely resolve bucket host names: path style.
            options += [f"{n}-s3-endpoint={access.endpoint}", f"{n}-s3-uri-style=path"]
            if access.port:
                options.append(f"{n}-storage-port={access.port}")
        else:
            options.append(f"{n}-s3-endpoint=s3.{region}.amazonaws.com")
        if access is not None and not access.verify_tls:
            options.append(f"{n}-storage-verify-tls=n")
        if access is not None and access.ca_file:
            options.append(f"{n}-storage-ca-file={access.ca_file}")
    if repo.encrypted:
        # pgBackRest's only cipher; the passphrase travels in PGBACKREST_REPO<n>_CIPHER_PASS (cipher_env).
        options.append(f"{n}-cipher-type=aes-256-cbc")
    # Time-based: pgBackRest keeps every full backup (with its diffs, incrs and WAL) needed to recover
    # to any point of the last N days, so retention never expires what that window needs.
    options += [f"{n}-retention-full-type=time", f"{n}-retention-full={repo.retention_days}"]
    return options


def secret_env(settings: StanzaSettings, s3: Mapping[str, S3Access]) -> dict[str, str]:
    """``PGBACKREST_REPO<n>_S3_KEY`` … of every S3 repository with keys, for drflow's own commands."""
    env: dict[str, str] = {}
    for repo in settings.repos:
        access = s3.get(repo.name)
        if repo.type != "s3" or access is None:
            continue
        prefix = f"PGBACKREST_REPO{repo.index}_S3_"
        for suffix, value in (("KEY", access.key), ("KEY_SECRET", access.secret), ("TOKEN", access.token)):
            if value:
                env[prefix + suffix] = value
    return env


def cipher_env(settings: StanzaSettings, passphrases: Mapping[str, str]) -> dict[str, str]:
    """``PGBACKREST_REPO<n>_CIPHER_PASS`` of every encrypted repository (passphrases by target name)."""
    return {
        f"PGBACKREST_REPO{repo.index}_CIPHER_PASS": passphrases[repo.name]
        for repo in settings.repos
        if repo.encrypted and repo.name in passphrases
    }


@contextmanager
def config_file(host: Host, text: str, directory: Path) -> Iterator[Path]:
    """Write ``text`` as ``directory/pgbackrest.conf`` on ``host``, readable only by the database OS user;
    remove it after."""
    path = directory / "pgbackrest.conf"
    host.write_text(path, text, as_db_user=True, mode=0o600)
    try:
        yield path
    finally:
        host.run(["rm", "-f", "--", str(path)], as_db_user=True, check=False, timeout=60)
