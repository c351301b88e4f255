"""A small client of Airflow's public REST API (v2), for reading a run's audit trail from inside a task.

An Airflow 3 task must not open the metadata database; it reads what it needs through the API like
any other client. The connection (an http connection, ``drflow_airflow_api`` by default) holds the
api-server's base URL as host (``http://airflow-api:8080``) and a read-only user's login/password;
the client exchanges them for a token at ``POST /auth/token``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

DEFAULT_CONN_ID = "drflow_airflow_api"
PAGE_SIZE = 100


class AuditError(RuntimeError):
    """The API could not be read; the message says what to fix."""


class ApiNotFoundError(AuditError, LookupError):
    pass


class ApiClient(Protocol):
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` (starting with ``/api/v2/``) and return the decoded JSON."""
        ...


def q(value: str) -> str:
    """One path segment (run ids contain ':' and '+')."""
    return quote(value, safe="")


def get_all(api: ApiClient, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a paginated collection (``{key: [...], "total_entries": n}``)."""
    items: list[dict[str, Any]] = []
    while True:
        page = api.get(path, {**(params or {}), "limit": PAGE_SIZE, "offset": len(items)})
        batch = list(page.get(key) or [])
        items.extend(batch)
        total = page.get("total_entries")
        if not batch or len(batch) < PAGE_SIZE or (isinstance(total, int) and len(items) >= total):
            return items


class AirflowApi:
    """Token-authenticated GETs against one api-server."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self._token: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str = DEFAULT_CONN_ID) -> AirflowApi:
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:
            raise AuditError(
                f"no Airflow connection {conn_id!r} to read the run's audit trail: {exc}; create an http "
                f"connection {conn_id!r} with the api-server's base URL as host and a read-only user's "
                f"login and password (or set audit_conn_id to another connection)"
            ) from exc
        return cls.from_fields(conn_id, conn)

    @classmethod
    def from_fields(cls, conn_id: str, conn: Any) -> AirflowApi:
        """From a connection's fields (an Airflow ``Connection`` or drflow's ``ConnectionDef`` on the CLI)."""
        host = conn.host or ""
        if not host or not conn.login:
            raise AuditError(
                f"connection {conn_id!r} needs the api-server's base URL as host and a user's login and password"
            )
        base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
        if conn.port:
            base = f"{base.rstrip('/')}:{conn.port}"
        return cls(base, conn.login, conn.password or "")

    def token(self) -> str:
        if self._token is None:
            response = self._request(
                "POST", "/auth/token", json={"username": self.username, "password": self._password}
            )
            if response.status_code not in (200, 201):
                raise AuditError(
                    f"the api-server at {self.base_url} refused a token for user {self.username!r} "
                    f"({response.status_code} {response.text[:200]!r}); check the user and password in the connection"
                )
            self._token = str(response.json()["access_token"])
        return self._token

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._request("GET", path, params=params, auth=True)
        if response.status_code == 401:  # an expired token: get a new one once
            self._token = None
            response = self._request("GET", path, params=params, auth=True)
        self.server_date = _http_date(response.headers.get("date"))
        if response.status_code == 404:
            raise ApiNotFoundError(f"GET {path}: not found ({response.text[:200]})")
        if response.status_code == 403:
            raise AuditError(
                f"user {self.username!r} may not read {path}; give it read access to DAGs, DAG runs, task "
                f"instances, HITL details and the audit log"
            )
        if response.status_code >= 400:
            raise AuditError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def patch(self, path: str, body: dict[str, Any], params: dict[str, Any] | None = None) -> Any:
        """PATCH ``path`` with a JSON body (the run notes drflow writes); errors say which permission is missing."""
        response = self._request("PATCH", path, json=body, params=params, auth=True)
        if response.status_code == 401:
            self._token = None
            response = self._request("PATCH", path, json=body, params=params, auth=True)
        if response.status_code == 403:
            raise AuditError(f"user {self.username!r} may not change {path}; give it edit access to DAG runs")
        if response.status_code >= 400:
            raise AuditError(f"PATCH {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    server_date: datetime | None = None
    """The api-server's clock at the last GET (its ``Date`` header, whole seconds, truncated)."""

    def _request(self, method: str, path: str, *, auth: bool = False, **kwargs: Any) -> Any:
        import requests

        headers = {"Authorization": f"Bearer {self.token()}"} if auth else {}
        try:
            return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise AuditError(
                f"cannot reach the Airflow api-server at {self.base_url}: {exc}; check the connection's host "
                f"and that the api-server runs"
            ) from exc


def _http_date(value: str | None) -> datetime | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
