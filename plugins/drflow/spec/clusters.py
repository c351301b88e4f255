"""Components that live on one PostgreSQL cluster share its physical backups: one base backup per cluster.

pg_basebackup copies a whole cluster, whatever database a component names. When several components
reach the same primary (the same Airflow connection and host) and each has the same pg_basebackup policy
(name, schedule, targets, compression, retention, `from:`; no `copy_to`), the backup of a schedule slot is
taken once: the first of their runs to get the cluster's advisory lock takes it, and the others record the
same backup in their own catalogs (see :mod:`drflow.jobs.cluster_backup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drflow.spec.model import BackupPolicy, Component, Spec


@dataclass(frozen=True)
class ClusterMember:
    """A component sharing the cluster backup: its database and its drills' validation queries."""

    component: str
    database: str
    validation: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class ClusterShare:
    """The components (spec order, the policy's own included) that share one policy's cluster backups."""

    key: str
    """The cluster as the plan knows it: the primary's Airflow connection (the run adds the system identifier)."""
    members: tuple[ClusterMember, ...]

    @property
    def components(self) -> list[str]:
        return [m.component for m in self.members]

    def member(self, component: str) -> ClusterMember:
        return next(m for m in self.members if m.component == component)

    def to_params(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "members": [
                {"component": m.component, "database": m.database, "validation": [dict(v) for v in m.validation]}
                for m in self.members
            ],
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ClusterShare:
        return cls(
            key=str(params["key"]),
            members=tuple(
                ClusterMember(
                    str(m["component"]), str(m["database"]), tuple(dict(v) for v in m.get("validation") or ())
                )
                for m in params["members"]
            ),
        )


def _shape(component: Component, policy: BackupPolicy) -> tuple[Any, ...] | None:
    """What must be equal for two components' policies to share a cluster backup; None: never shared."""
    datastore = component.postgres
    if datastore is None or policy.method != "pg_basebackup" or policy.copy_to:
        return None
    source = datastore.primary.conn_id
    if policy.from_node is not None:
        source = next((r.conn_id for r in datastore.replicas if r.name == policy.from_node), policy.from_node)
    return (
        datastore.primary.conn_id,
        datastore.primary.host,
        source,
        policy.name,
        policy.schedule,
        tuple(policy.targets),
        policy.compression,
        policy.retention,
    )


def cluster_share(
    spec: Spec,
    component: Component,
    policy: BackupPolicy,
    validation: Callable[[Component], Sequence[Mapping[str, Any]]],
) -> ClusterShare | None:
    """The components sharing ``policy``'s backups with ``component`` (None when it shares with nobody).

    ``validation`` gives a component's drill validation queries.
    """
    shape = _shape(component, policy)
    if shape is None:
        return None
    group = _groups(spec).get(shape, [])
    if len(group) < 2:
        return None
    members = []
    for other in group:
        assert other.postgres is not None  # only database components have a shape
        members.append(ClusterMember(other.name, other.postgres.database, tuple(validation(other))))
    return ClusterShare(key=str(shape[0]), members=tuple(members))


# Every policy of a spec asks for its group: computed once per spec object (specs of thousands of components).
_GROUPS: dict[int, tuple[Spec, dict[tuple[Any, ...], list[Component]]]] = {}
_GROUPS_KEPT = 16


def _groups(spec: Spec) -> dict[tuple[Any, ...], list[Component]]:
    """Components (spec order) by the shape of their shareable policies."""
    cached = _GROUPS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    groups: dict[tuple[Any, ...], list[Component]] = {}
    for component in spec.components:
        for policy in component.backup_policies:
            shape = _shape(component, policy)
            group = groups.setdefault(shape, []) if shape is not None else None
            if group is not None and (not group or group[-1] is not component):
                group.append(component)
    if len(_GROUPS) >= _GROUPS_KEPT:
        _GROUPS.clear()
    _GROUPS[id(spec)] = (spec, groups)
    return groups
