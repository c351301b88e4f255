"""The subset of Statuspage's REST API v1 that drflow's statuspage channel calls, in memory.

The sandbox's webhook receiver answers it under ``/v1/pages/…`` (so `make airflow` plan runs have a status
page), and the tests serve it from a real HTTP server. Incidents: create, list (unresolved, recent),
update; postmortem: draft, publish. Every call needs ``Authorization: OAuth <key>`` (the key given, if any).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_KEY = "sandbox-statuspage-key"
"""The key the sandbox's connection sends (``drflow sandbox up`` prints it)."""
ROUTE = re.compile(r"^/v1/pages/(?P<page>[A-Za-z0-9]+)/incidents(?:/(?P<id>[a-z0-9]+))?(?P<rest>/[a-z/]+)?$")
STATUSES = frozenset({"investigating", "identified", "monitoring", "resolved"})


@dataclass
class StatuspageFake:
    key: str | None = API_KEY
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(
        self, method: str, path: str, query: Mapping[str, str], body: Any, headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        """The status and JSON answer of one request."""
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not auth.startswith("OAuth ") or (self.key is not None and auth != f"OAuth {self.key}"):
            return 401, {"error": "Could not authenticate"}
        match = ROUTE.match(path)
        if match is None:
            return 404, {"error": f"no such endpoint: {path}"}
        page, incident_id, rest = match["page"], match["id"], match["rest"] or ""
        with self.lock:
            if incident_id is None:
                return self._collection(method, page, query, body)
            if incident_id == "unresolved" and method == "GET" and not rest:
                return 200, self._listed(page, unresolved=True)
            incident = self.incidents.get(incident_id)
            if incident is None or incident["page_id"] != page:
                return 404, {"error": "The requested resource could not be found."}
            return self._one(method, incident, rest, body)

    def _collection(self, method: str, page: str, query: Mapping[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, self._listed(page, unresolved=False)[: int(query.get("limit") or 100)]
        if method != "POST":
            return 405, {"error": f"{method} not allowed"}
        given = (body or {}).get("incident") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not given.get("name"):
            return 422, {"error": ["name can't be blank"]}
        status = given.get("status") or "investigating"
        if status not in STATUSES:
            return 422, {"error": [f"status {status} is not valid"]}
        now = _now()
        incident = {
            "id": secrets.token_hex(6),
            "page_id": page,
            "name": given["name"],
            "status": status,
            "metadata": given.get("metadata") or {},
            "created_at": now,
            "resolved_at": now if status == "resolved" else None,
            "incident_updates": [{"status": status, "body": given.get("body") or "", "created_at": now}],
            "postmortem_body": None,
            "postmortem_published_at": None,
        }
        self.incidents[incident["id"]] = incident
        return 201, incident

    def _one(self, method: str, incident: dict[str, Any], rest: str, body: Any) -> tuple[int, Any]:
        given = body if isinstance(body, dict) else {}
        if not rest and method in ("PATCH", "PUT"):
            change = given.get("incident") or {}
            status = change.get("status") or incident["status"]
            if status not in STATUSES:
                return 422, {"error": [f"status {status} is not valid"]}
            now = _now()
            incident["status"] = status
            incident["resolved_at"] = now if status == "resolved" else incident["resolved_at"]
            if change.get("body"):
                incident["incident_updates"].insert(0, {"status": status, "body": change["body"], "created_at": now})
            return 200, incident
        if not rest and method == "GET":
            return 200, incident
        if rest == "/postmortem" and method == "PUT":
            incident["postmortem_body"] = (given.get("postmortem") or {}).get("body_draft")
            return 200, {"body_draft": incident["postmortem_body"], "published_at": None}
        if rest == "/postmortem/publish" and method == "PUT":
            if not incident["postmortem_body"]:
                return 422, {"error": ["the postmortem has no draft to publish"]}
            incident["postmortem_published_at"] = _now()
            return 200, {"body": incident["postmortem_body"], "published_at": incident["postmortem_published_at"]}
        return 404, {"error": f"no such endpoint: {method} …{rest}"}

    def _listed(self, page: str, *, unresolved: bool) -> list[dict[str, Any]]:
        found = [i for i in self.incidents.values() if i["page_id"] == page]
        if unresolved:
            found = [i for i in found if i["status"] != "resolved"]
        return sorted(found, key=lambda i: str(i["created_at"]), reverse=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()
