"""Airflow connection definitions, read through Airflow in tasks or straight from the environment on the CLI.

Inside Airflow (tasks, DAG parsing, tests) a connection is whatever Airflow's secrets chain says. The
incident CLI (`drflow backups list`, `restore`, `restore-table` …) must answer in a second, and importing
Airflow costs several: it calls :func:`read_without_airflow` and then reads the same definitions Airflow
would read outside a task — an ``AIRFLOW_CONN_<ID>`` variable in URI or JSON form — parsed here as
Airflow parses them. Only when a secrets backend is configured (``[secrets] backend``), which may hold
the connection instead, is Airflow loaded to ask it. Nothing falls back to defaults: a connection defined
nowhere is an error naming the variable to export.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

_without_airflow = False


class ConnectionDefinitionError(LookupError):
    """A connection is not defined or cannot be parsed; the message says what to do."""


def read_without_airflow(enabled: bool = True) -> None:
    """Read connections from ``AIRFLOW_CONN_*`` without importing Airflow, for the rest of this process."""
    global _without_airflow
    _without_airflow = enabled


def reading_without_airflow() -> bool:
    return _without_airflow


def env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@dataclass(frozen=True)
class ConnectionDef:
    """The fields of an Airflow connection drflow reads."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def get_connection(conn_id: str) -> ConnectionDef:
    """The connection ``conn_id``.

    Without Airflow, one defined nowhere raises :class:`ConnectionDefinitionError`; through Airflow,
    Airflow's own not-found error.
    """
    if _without_airflow:
        found = from_environment(conn_id)
        if found is not None:
            return found
        if not secrets_backend_configured():
            raise not_defined(conn_id)
    return _from_airflow(conn_id)


def not_defined(conn_id: str, cause: str = "") -> ConnectionDefinitionError:
    because = f" ({cause})" if cause else ""
    return ConnectionDefinitionError(
        f"Airflow connection {conn_id!r} is not defined{because}; define it in the Airflow UI or export "
        f'{env_var(conn_id)} (for the sandbox: eval "$(drflow sandbox up)")'
    )


def from_environment(conn_id: str) -> ConnectionDef | None:
    """``AIRFLOW_CONN_<ID>`` parsed as Airflow does (JSON when it starts with ``{``, else a URI), or None."""
    value = os.environ.get(env_var(conn_id))
    if value is None:
        return None
    try:
        return parse_json(conn_id, value) if value.strip().startswith("{") else parse_uri(conn_id, value.strip())
    except (ValueError, TypeError) as exc:
        raise ConnectionDefinitionError(
            f"{env_var(conn_id)} is not a connection Airflow can read ({exc}); give a URI such as "
            "aws://KEY:SECRET@/?region_name=eu-west-1 or JSON such as "
            '{"conn_type": "aws", "login": "KEY", "password": "SECRET", "extra": {"region_name": "eu-west-1"}}'
        ) from None


def parse_json(conn_id: str, value: str) -> ConnectionDef:
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("the JSON form must be an object")
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra)
    port = data.get("port")
    return ConnectionDef(
        conn_id=conn_id,
        conn_type=_normalize_type(data.get("conn_type")),
        host=data.get("host"),
        login=data.get("login"),
        password=data.get("password"),
        schema=data.get("schema"),
        port=int(port) if port else None,
        extra=dict(extra),
    )


def parse_uri(conn_id: str, uri: str) -> ConnectionDef:
    """Airflow's ``Connection.from_uri``: ``type://login:password@host:port/schema?extra`` (host may carry a scheme)."""
    schemes = uri.count("://")
    if schemes == 0 or schemes > 2:
        raise ValueError("expected type://login:password@host:port/schema?extra=…")
    conn_type = urlsplit(uri).scheme
    host_with_protocol = schemes == 2
    rest = uri.replace(f"{conn_type}://", "" if host_with_protocol else "//")  # every occurrence, as Airflow
    if host_with_protocol:
        protocol_part = rest.split("://", 1)[0]
        if "@" in protocol_part or ":" in protocol_part:
            raise ValueError("a host with a protocol cannot be preceded by credentials")
    parts = urlsplit(rest)
    host = unquote(parts.hostname or "")
    if "/" in host:  # a host that is a path (Airflow keeps the netloc as written)
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        host = unquote(host)
    if host and host_with_protocol:
        host = f"{parts.scheme}://{host}"
    extra: dict[str, Any] = {}
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = json.loads(query["__extra__"]) if "__extra__" in query else query
    return ConnectionDef(
        conn_id=conn_id,
        conn_type=_normalize_type(conn_type),
        host=host or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path[1:]) if parts.path[1:] else None,
        port=parts.port,
        extra=extra,
    )


def secrets_backend_configured() -> bool:
    """True when Airflow is configured with a secrets backend (env or airflow.cfg) that may hold connections."""
    if any(os.environ.get(f"AIRFLOW__SECRETS__BACKEND{suffix}") for suffix in ("", "_CMD", "_SECRET")):
        return True
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    config = Path(os.environ.get("AIRFLOW_CONFIG") or home / "airflow.cfg")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config)
    except (configparser.Error, OSError):
        return True  # unreadable here: let Airflow decide, as it would have
    return bool(parser.get("secrets", "backend", fallback="").strip())


def _normalize_type(conn_type: Any) -> str | None:
    if not conn_type:
        return None
    text = str(conn_type)
    return "postgres" if text == "postgresql" else text.replace("-", "_")


def _from_airflow(conn_id: str) -> ConnectionDef:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)  # Airflow's own errors, as every task has always seen them
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    return ConnectionDef(
        conn_id=conn_id,
        conn_type=conn.conn_type,
        host=conn.host,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        port=conn.port,
        extra=dict(extra),
    )


AWS_PLAIN_EXTRA_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "region_name",
        "endpoint_url",
        "service_config",
        "verify",
        "config_kwargs",
        "profile_name",
    }
)
"""Extra keys of an aws connection whose meaning plain boto3 reproduces exactly (any other: use the hook)."""


def aws_session_kwargs(conn: ConnectionDef | None, region: str | None) -> dict[str, Any]:
    """boto3 ``Session`` arguments of an aws connection, with the amazon provider's precedence.

    Login and password, else the extra's key pair, else boto3's own chain; the region given, else the extra's.
    """
    extra = conn.extra if conn is not None else {}
    key_id, secret = None, None
    if conn is not None and conn.login and conn.password:
        key_id, secret = conn.login, conn.password
    elif extra.get("aws_access_key_id") and extra.get("aws_secret_access_key"):
        key_id, secret = extra["aws_access_key_id"], extra["aws_secret_access_key"]
    return {
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "aws_session_token": extra.get("aws_session_token"),
        "region_name": region or extra.get("region_name"),
        "profile_name": extra.get("profile_name"),
    }


@dataclass(frozen=True)
class HttpBase:
    """An http connection as a request needs it: the base URL, basic auth from login/password, extra headers."""

    url: str
    auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def join(self, endpoint: str) -> str:
        if not endpoint:
            return self.url
        return self.url.rstrip("/") + "/" + endpoint.lstrip("/")


def http_base(conn_id: str) -> HttpBase:
    """The base URL of an Airflow http connection (host with or without a scheme, the schema as the scheme
    when it is http or https, the port), its basic auth and the ``headers`` of its extra."""
    conn = get_connection(conn_id)
    host = conn.host or ""
    if "://" not in host:
        scheme = conn.schema if conn.schema in ("http", "https") else "http"
        host = f"{scheme}://{host}"
    if conn.port:
        host = f"{host}:{conn.port}"
    auth = (conn.login, conn.password or "") if conn.login else None
    headers = {str(k): str(v) for k, v in (conn.extra.get("headers") or {}).items()}
    return HttpBase(url=host, auth=auth, headers=headers)
