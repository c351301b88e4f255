"""Is the primary replicating synchronously, as the spec requires of critical data? One read-only check.

Read in one statement (a check of :mod:`drflow.engines.postgres.checks`: read-only transaction, statement
timeout): ``synchronous_standby_names``, ``synchronous_commit`` and every standby's ``sync_state`` in
``pg_stat_replication``. Two faults, both critical:

- ``sync_fallback``: the primary no longer waits for any standby — ``synchronous_standby_names`` is empty
  (what an HA manager such as Patroni's non-strict synchronous mode does when the standby fails) or
  ``synchronous_commit`` is ``local``/``off`` — so a failover can lose acknowledged commits, silently;
- ``no_sync_standby``: the primary waits for standbys, but fewer are synchronous now than it asks for
  (stopped, disconnected, or not named by their ``application_name``): commits hang until one is back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from drflow.engines.postgres.conninfo import PgConnInfo

SYNC_STATES = frozenset({"sync", "quorum"})
_COUNT = re.compile(r"^\s*(?:(?:first|any)\s+)?(\d+)\s*\(", re.IGNORECASE)
SETTINGS_QUERY = (
    "select json_build_object("
    "'standby_names', current_setting('synchronous_standby_names'),"
    " 'synchronous_commit', current_setting('synchronous_commit'),"
    " 'standbys', coalesce((select json_agg(json_build_object('application_name', application_name,"
    " 'state', state, 'sync_state', sync_state) order by application_name) from pg_stat_replication), '[]'::json))"
)


def read_sync_settings(primary: PgConnInfo, timeout_s: float) -> dict[str, Any]:
    """The primary's synchronous replication settings and its standbys' sync states (raises psycopg.Error)."""
    from drflow.engines.postgres.checks import fetch_value, read_only_connection

    with read_only_connection(primary) as db, db.transaction():
        value = fetch_value(db, SETTINGS_QUERY, timeout_s=timeout_s)
    return dict(value)


def required_standbys(standby_names: str) -> int:
    """How many synchronous standbys ``synchronous_standby_names`` asks for (0 when empty)."""
    if not standby_names.strip():
        return 0
    match = _COUNT.match(standby_names)
    return int(match.group(1)) if match else 1


def sync_faults(
    settings: Mapping[str, Any], database: str, replicas: Sequence[str], required: bool = True
) -> list[tuple[str, str]]:
    """``(code, message)`` for each way the settings fall short of synchronous replication.

    Not ``required`` (the spec asks for asynchronous replication): only a primary that waits for synchronous
    standbys it does not have, since every commit then hangs whatever the spec says.
    """
    names = str(settings.get("standby_names") or "")
    commit = str(settings.get("synchronous_commit") or "")
    standbys = list(settings.get("standbys") or [])
    synchronous = [s for s in standbys if s.get("sync_state") in SYNC_STATES]
    streaming = ", ".join(f"{s['application_name']} ({s['sync_state']})" for s in standbys) or "none"
    listed = ", ".join(dict.fromkeys([*(str(s["application_name"]) for s in standbys), *replicas])) or "replica-1"
    enable = (
        f"ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({listed})'; SELECT pg_reload_conf(); "
        "(each standby's application_name, from its primary_conninfo, must be listed)"
    )
    faults = []
    if not names.strip():
        faults.append(
            (
                "sync_fallback",
                f"replication of {database} has fallen back to asynchronous: synchronous_standby_names is empty "
                "on the primary, so it commits without waiting for any standby and a failover now can lose "
                f"acknowledged commits. The spec requires synchronous replication for this data; on the primary run "
                f"{enable}. If an HA manager relaxed it after a standby failure, bring the standby back first",
            )
        )
    if commit in ("local", "off"):
        faults.append(
            (
                "sync_fallback",
                f"synchronous_commit is '{commit}' on the primary of {database}: commits do not wait for the "
                "synchronous standby, so replication is asynchronous in effect. Run ALTER SYSTEM SET "
                "synchronous_commit = 'on'; SELECT pg_reload_conf(); on the primary (or 'remote_apply')",
            )
        )
    wanted = required_standbys(names)
    if wanted and len(synchronous) < wanted:
        why = (
            "no standby is connected"
            if not standbys
            else f"the standbys streaming are not synchronous ({streaming}): synchronous_standby_names names "
            "none of them by its application_name"
        )
        relaxed = (
            ""
            if required
            else "the spec asks for asynchronous replication of this data, but the primary is configured for "
            "synchronous replication, and "
        )
        faults.append(
            (
                "no_sync_standby",
                f"{relaxed}the primary of {database} has {len(synchronous)} synchronous standby(s) of the {wanted} "
                f"that synchronous_standby_names = '{names}' asks for: {why}. Every commit waits until one is back, so "
                "writes hang (or, under an HA manager that relaxes synchronous mode, replication silently turns "
                "asynchronous). Start the standby (the other alerts say why it is not streaming) or fix "
                "synchronous_standby_names" + ("" if required else " (empty, if it should not wait for standbys)"),
            )
        )
    return faults if required else [fault for fault in faults if fault[0] == "no_sync_standby"]
