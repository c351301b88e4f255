"""`pgbackrest expire` of a stanza, one repository at a time, and the labels each repository still holds.

The retention pgBackRest applies is rendered into pgbackrest.conf from the spec (``repoN-retention-full-type
=time``, ``repoN-retention-full=<days>``); this runs it. A repository that fails is reported and does not stop
the others; its drflow records then stay (their labels are unknown).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from drflow.engines.postgres.pgbackrest_config import PgBackRestError
from drflow.hosts import Host
from drflow.jobs.pgbackrest import StanzaAccess, open_stanza

log = logging.getLogger(__name__)


@dataclass
class StanzaExpiry:
    labels: dict[str, set[str]] = field(default_factory=dict)
    """By target name: the backup labels pgBackRest still lists after its expire."""
    errors: dict[str, str] = field(default_factory=dict)
    """By target name: why that repository could not be expired or listed."""


def expire_stanza(access: StanzaAccess, *, host: Host, work_dir: str | None = None) -> StanzaExpiry:
    result = StanzaExpiry()
    with open_stanza(access, host=host, work_dir=work_dir) as pgbackrest:
        for repo in access.settings.repos:
            try:
                output = pgbackrest.run("expire", "--log-level-console=info", repo=repo.index)
                log.info("pgbackrest expire of %s repo%d (%s):\n%s", repo.name, repo.index, repo.name, output[-2000:])
                result.labels[repo.name] = {str(b["label"]) for b in pgbackrest.backups(repo.index)}
            except PgBackRestError as exc:
                result.errors[repo.name] = str(exc)
    return result
