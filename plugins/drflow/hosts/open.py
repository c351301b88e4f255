"""The host the spec names, opened: the worker itself, or a host over SSH."""

from __future__ import annotations

from drflow.hosts import Host, LocalHost
from drflow.hosts.ssh import SshHost


def open_host(ssh_conn_id: str | None = None, db_user: str | None = None) -> Host:
    """The host the spec names: over SSH through the Airflow connection ``ssh_conn_id``, else the worker.

    ``db_user`` is the operating-system user that owns the data there (default ``postgres``). Takes what
    ``drflow.spec.hosts.ssh_conn_of`` gives for the spec's host: ``open_host(*ssh_conn_of(node.host))``.
    """
    if ssh_conn_id is None:
        return LocalHost()
    return SshHost(ssh_conn_id, db_user=db_user or "postgres")
