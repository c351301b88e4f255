"""Reference checks of backups taken from a standby (`from: <replica>` on a backup policy)."""

from __future__ import annotations

from typing import Any

from drflow.spec.check_helpers import choices
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source

STANDBY_METHODS = ("pg_basebackup", "pgbackrest")
"""Methods that can copy a standby's files: pg_basebackup over its replication connection, pgBackRest with
backup-standby (which still starts and stops the backup on the primary)."""


def check_standby_source(source: Source, loc: Loc, policy: Any, datastore: Any) -> list[Diagnostic]:
    """`from:` names a replica of the datastore, on a method that can back up a standby; pgBackRest also
    needs the replica's data directory on the primary's host (it copies the standby's files there)."""
    if not isinstance(policy, dict) or "from" not in policy:
        return []
    ref, method = policy.get("from"), policy.get("method")
    name = policy.get("name")
    if method not in STANDBY_METHODS:
        message = f"backup policy '{name}' takes its backup from '{ref}', but method '{method}' cannot back up "
        message += "a standby"
        hint = f"use method {' or '.join(STANDBY_METHODS)} with 'from:', or remove 'from:' to back up the primary"
        return [source.diagnostic((*loc, "from"), message, hint)]
    replicas = datastore.get("replicas") if isinstance(datastore, dict) else None
    by_name = {r.get("name"): r for r in replicas if isinstance(r, dict)} if isinstance(replicas, list) else {}
    if not isinstance(ref, str) or ref not in by_name:
        names = sorted(n for n in by_name if isinstance(n, str))
        message = f"backup policy '{name}' takes its backup from '{ref}', which is not a replica of this datastore"
        hint = choices(str(ref), names, "replicas", "declare the replica under datastore.replicas, or remove 'from:'")
        return [source.diagnostic((*loc, "from"), message, hint)]
    if method != "pgbackrest":
        return []
    replica, primary = by_name[ref], datastore.get("primary") if isinstance(datastore, dict) else None
    found = []
    if not replica.get("data_directory"):
        message = (
            f"backup policy '{name}' uses pgBackRest from replica '{ref}' (backup-standby), which copies the "
            "replica's files, but the replica has no data_directory"
        )
        found.append(source.diagnostic((*loc, "from"), message, f"set data_directory of replica '{ref}'"))
    primary_host = primary.get("host", "local") if isinstance(primary, dict) else "local"
    if replica.get("host", "local") != primary_host:
        message = (
            f"backup policy '{name}' uses pgBackRest from replica '{ref}', which lives on another host than the "
            "primary: pgBackRest runs on the primary's host and reads the standby's files there"
        )
        hint = (
            "use method pg_basebackup with 'from:' (it streams from any host), or put the replica on the primary's "
            "host (the same 'host:')"
        )
        found.append(source.diagnostic((*loc, "from"), message, hint))
    return found
