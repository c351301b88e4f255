"""Deliver a message to one channel: Slack incoming webhook, SMTP, or a generic JSON webhook.

Connections (the spec names only the conn_id):

* ``slack`` — an http connection. The webhook URL is the connection's **password** when that is a
  full ``https://…`` URL (the secret part of a Slack webhook stays in the masked field); otherwise the
  connection's host (a full URL, or host + schema + port) is the URL. drflow POSTs ``{"text": …}``.
* ``webhook`` — an http connection whose host is the URL: either the whole URL, port and path included
  (``https://hooks.example.com:8443/dr``, leave the port field empty: the http provider would append it
  after the path), or a bare host with schema and port fields. Login/password become basic auth and
  the extra's keys become headers (the http provider's rules). drflow POSTs JSON with
  event, spec, plan, scenario, dag_id, run_id, task_id, reason, state, url, subject and text.
* ``smtp`` — an smtp connection (the smtp provider: host, port, login, password; extra
  ``from_email``, ``disable_ssl``, ``disable_tls``, ``timeout``, ``retry_limit``).
"""

from __future__ import annotations

import html
import socket
from collections.abc import Sequence
from typing import Any

TIMEOUT_S = 15.0


class ChannelError(RuntimeError):
    """A channel could not deliver; the message says which and what to check."""


def send_slack(conn_id: str, text: str, *, timeout_s: float = TIMEOUT_S) -> int:
    import requests

    url = slack_webhook_url(conn_id)
    try:
        response = requests.post(url, json={"text": text}, timeout=timeout_s)
    except requests.RequestException as exc:
        raise ChannelError(
            f"Slack webhook of connection {conn_id!r} did not answer: {exc}; check the webhook URL and "
            f"that this worker reaches it"
        ) from exc
    if response.status_code >= 300:
        raise ChannelError(
            f"Slack webhook of connection {conn_id!r} answered {response.status_code} "
            f"{response.text[:200]!r}; check that the webhook still exists (Slack answers 404/410 for a "
            f"removed one) and update the connection"
        )
    return int(response.status_code)


def slack_webhook_url(conn_id: str) -> str:
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.password and conn.password.startswith(("https://", "http://")):
        return str(conn.password)
    if not conn.host:
        raise ChannelError(
            f"connection {conn_id!r} has no webhook URL: put the Slack incoming-webhook URL in its password "
            f"(or its host)"
        )
    return str(HttpHook(method="POST", http_conn_id=conn_id).url_from_endpoint(""))


def send_webhook(conn_id: str, payload: dict[str, Any], *, timeout_s: float = TIMEOUT_S) -> int:
    import requests
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="POST", http_conn_id=conn_id)
    try:
        response = hook.run(endpoint="", json=payload, extra_options={"check_response": False, "timeout": timeout_s})
    except requests.RequestException as exc:
        raise ChannelError(
            f"webhook of connection {conn_id!r} did not answer: {exc}; check the connection's host and port"
        ) from exc
    if response.status_code >= 300:
        raise ChannelError(
            f"webhook of connection {conn_id!r} answered {response.status_code} {response.text[:200]!r}; "
            f"check the receiver and the connection's credentials"
        )
    return int(response.status_code)


def send_smtp(conn_id: str, to: Sequence[str], subject: str, text: str) -> int:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    if not to:
        raise ChannelError(f"smtp channel on connection {conn_id!r} has no recipients; add `to:` in the spec")
    body = f'<pre style="font-family: inherit; white-space: pre-wrap">{html.escape(text)}</pre>'
    try:
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            sender = hook.from_email or (hook.smtp_user if "@" in hook.smtp_user else f"drflow@{socket.getfqdn()}")
            hook.send_email_smtp(to=list(to), subject=subject, html_content=body, from_email=sender)
    except Exception as exc:
        raise ChannelError(
            f"mail through connection {conn_id!r} to {', '.join(to)} failed: {exc}; check the connection's "
            f"host, port, credentials and its disable_ssl/disable_tls extras"
        ) from exc
    return len(to)
