"""Where host-side work runs: ``host: local`` (the worker) or ``host: {ssh_conn_id: …}`` (a host over SSH).

Database nodes (``primary``, each replica) and ``files`` datastores name their host. The work that must
run there — pgBackRest, ``fence: stop``, ``pg_rewind`` rebuilds, tar of a file tree — goes through
:mod:`drflow.hosts`, which opens the SSH connection through the ssh provider's hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StringConstraints, Tag


class SshHostSpec(BaseModel):
    """A host reached over SSH: an Airflow connection of type ssh (host, port, login, private_key, host_key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ssh_conn_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")] = Field(
        description="Airflow connection of type ssh to the host (its extra holds private_key and host_key)."
    )
    db_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = Field(
        "postgres",
        description="The operating-system user that owns the data there; when the SSH login is another user, "
        "commands run through `sudo -n -u <db_user>`.",
    )


def _host_kind(value: Any) -> str:
    return "local" if isinstance(value, str) else "ssh"


def _only_local(value: Any) -> Any:
    if value != "local":
        raise ValueError(
            f"{value!r} is not a host; write 'local' (the worker is the host) or "
            "{ssh_conn_id: CONN, db_user: postgres} (a host over SSH, CONN an Airflow ssh connection)"
        )
    return value


# One branch is validated, picked by the value's shape, so a mistake gets one message, not one per branch.
HostSpec = Annotated[
    Annotated[Literal["local"], BeforeValidator(_only_local), Tag("local")] | Annotated[SshHostSpec, Tag("ssh")],
    Discriminator(_host_kind),
]
HOST_DESCRIPTION = (
    "Where host-side work runs (pgBackRest, fence: stop, pg_rewind, tar of a tree): 'local' (the worker is the "
    "host) or {ssh_conn_id: CONN, db_user: postgres} (a host reached over SSH)."
)


def host_params(host: HostSpec) -> str | dict[str, Any]:
    """The host as plain JSON for plan parameters: ``"local"`` or ``{"ssh_conn_id", "db_user"}``."""
    return host if isinstance(host, str) else host.model_dump(mode="json")


def host_from_params(value: Any) -> HostSpec:
    """The host from :func:`host_params` (or a datastore's ``model_dump``); a missing one is ``local``."""
    if value is None or value == "local":
        return "local"
    if isinstance(value, SshHostSpec):
        return value
    if isinstance(value, Mapping):
        return SshHostSpec.model_validate(dict(value))
    raise ValueError(f"host {value!r} is neither 'local' nor {{ssh_conn_id: …}}")


def ssh_conn_of(host: HostSpec) -> tuple[str | None, str | None]:
    """(ssh_conn_id, db_user) of an SSH host, (None, None) for the worker: what ``drflow.hosts.open_host`` takes."""
    return (None, None) if isinstance(host, str) else (host.ssh_conn_id, host.db_user)
