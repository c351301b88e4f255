"""One Statuspage incident per plan run, through Atlassian Statuspage's REST API v1.

The channel's http connection holds the API base URL as host (``https://api.statuspage.io``) and the API
key as password (sent as ``Authorization: OAuth <key>``). The run's incident is found again by its
metadata ``{"drflow": {"dag_id", "run_id"}}`` (among the unresolved incidents, then the recent ones), so
a retried task never opens a second incident and no state is kept outside the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drflow.notifiers.channels import TIMEOUT_S, ChannelError

STATUS_OF = {"incident": "investigating", "update": "identified", "resolution": "resolved"}
RECENT = 100
"""How many recent incidents are searched for a resolved one (Statuspage's page size at most)."""


class StatuspageApi:
    """The calls drflow makes on one page, through the http provider's ``HttpHook``."""

    def __init__(self, conn_id: str, page_id: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.conn_id = conn_id
        self.page_id = page_id
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        import requests
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method=method, http_conn_id=self.conn_id)
        key = hook.get_connection(self.conn_id).password
        if not key:
            raise ChannelError(
                f"connection {self.conn_id!r} has no Statuspage API key; put the key in its password "
                "(and the API base URL, https://api.statuspage.io, in its host)"
            )
        endpoint = f"/v1/pages/{self.page_id}/{path}"
        options = {"check_response": False, "timeout": self.timeout_s}
        headers = {"Authorization": f"OAuth {key}", "Accept": "application/json"}
        try:
            if method == "GET":
                response = hook.run(endpoint=endpoint, data=dict(body or {}), headers=headers, extra_options=options)
            else:
                response = hook.run(endpoint=endpoint, json=dict(body or {}), headers=headers, extra_options=options)
        except requests.RequestException as exc:
            raise ChannelError(
                f"Statuspage API of connection {self.conn_id!r} did not answer: {exc}; check the connection's host"
            ) from exc
        if response.status_code >= 300:
            hint = {
                401: "the API key in the connection's password is wrong or revoked",
                404: f"page {self.page_id!r} does not exist for this key: check the channel's page_id",
            }.get(response.status_code, "see Statuspage's answer")
            raise ChannelError(
                f"Statuspage API of connection {self.conn_id!r} answered {response.status_code} to {method} "
                f"{endpoint}: {response.text[:200]!r}; {hint}"
            )
        return response.json() if response.content else None

    def find(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        """The run's incident: an unresolved one first, else a recent resolved one; None when there is none."""
        for path, params in (("incidents/unresolved", {}), ("incidents", {"limit": RECENT})):
            for incident in self.call("GET", path, params) or []:
                drflow = (incident.get("metadata") or {}).get("drflow") or {}
                if drflow.get("dag_id") == dag_id and drflow.get("run_id") == run_id:
                    return dict(incident)
        return None

    def create(self, name: str, status: str, body: str, dag_id: str, run_id: str) -> dict[str, Any]:
        incident = {
            "name": name,
            "status": status,
            "body": body,
            "metadata": {"drflow": {"dag_id": dag_id, "run_id": run_id}},
            "deliver_notifications": True,
        }
        return dict(self.call("POST", "incidents", {"incident": incident}))

    def update(self, incident_id: str, status: str, body: str) -> dict[str, Any]:
        return dict(self.call("PATCH", f"incidents/{incident_id}", {"incident": {"status": status, "body": body}}))

    def postmortem(self, incident_id: str, body: str) -> None:
        self.call("PUT", f"incidents/{incident_id}/postmortem", {"postmortem": {"body_draft": body}})
        publish = {"notify_subscribers": True, "notify_twitter": False}
        self.call("PUT", f"incidents/{incident_id}/postmortem/publish", {"postmortem": publish})


def publish(api: StatuspageApi, template: str, name: str, text: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """Send one rendered template to the run's incident; what was done, with the incident's id.

    ``incident`` opens the incident unless the run has one; ``update`` and ``resolution`` change the open
    incident (open it when there is none; leave a resolved one alone; an update identical to the newest one
    is not posted again); ``postmortem`` publishes the
    post-incident summary on the run's incident, resolved or not.
    """
    found = api.find(dag_id, run_id)
    if template == "postmortem":
        if found is None:
            raise ChannelError(
                f"no incident of run {run_id} on Statuspage page {api.page_id!r} to publish the post-incident "
                "summary on; the channel opens it on activation (or a notify step with template: incident)"
            )
        api.postmortem(str(found["id"]), text)
        return {"incident_id": found["id"], "action": "postmortem published", "status": found.get("status")}
    status = STATUS_OF[template]
    if found is None:
        created = api.create(name, status, text, dag_id, run_id)
        return {"incident_id": created.get("id"), "action": "created", "status": status}
    if template == "incident" or found.get("status") == "resolved":
        why = "already open" if template == "incident" else "already resolved"
        return {"incident_id": found["id"], "action": f"not sent: {why}", "status": found.get("status")}
    if found.get("status") == status and latest_body(found) == text:
        # The status cadence renders the same update until something public changes: customers see it once.
        return {"incident_id": found["id"], "action": "not sent: unchanged", "status": status}
    api.update(str(found["id"]), status, text)
    return {"incident_id": found["id"], "action": "updated", "status": status}


def latest_body(incident: Mapping[str, Any]) -> str | None:
    """The text of the incident's newest update (Statuspage lists them newest first)."""
    updates = incident.get("incident_updates") or []
    return str(updates[0].get("body")) if updates and isinstance(updates[0], Mapping) else None
