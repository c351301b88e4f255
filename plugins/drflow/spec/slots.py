"""Which replication slots a spec owns, and on which primary: names, owners, limits, collisions.

Every slot drflow creates has an owner in the spec:

- a WAL policy (``method: pg_receivewal``): its ``slot:``, or by default
  ``drflow_wal_<spec tag>_<component>_<policy>`` where the spec tag is 6 hex of the spec name's
  SHA-256, so two specs never share a default slot on one cluster (63 characters at most: a
  longer name is cut and ends in 6 hex of the full one);
- a replica: its ``slot:`` (drflow creates it when it rebuilds the node), or ``drflow_<node>``,
  the slot a rebuild creates for a node without one.

"The same primary" is the same ``primary.conn_id``. Pure spec logic: no database, no Airflow.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drflow.spec.diagnostics import Diagnostic
from drflow.spec.model import BackupPreset, Component, Spec
from drflow.spec.source import Loc, Source

DRFLOW_PREFIX = "drflow_"
WAL_PREFIX = "drflow_wal_"
MAX_SLOT_NAME = 63
DEFAULT_SLOT_RETENTION_LIMIT = 10 * 1024**3
_UNSAFE = re.compile(r"[^a-z0-9_]")

SlotKind = Literal["wal", "replica"]


def _hex(text: str, size: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def spec_tag(spec_name: str) -> str:
    """6 hex of the spec name: the part of a default WAL slot name that tells specs apart."""
    return _hex(spec_name)


def wal_slot_name(spec_name: str, component: str, policy: str, explicit: str | None = None) -> str:
    """The slot of a WAL policy: ``explicit`` when the spec sets one, else the default (module docstring)."""
    if explicit:
        return explicit
    name = f"{WAL_PREFIX}{spec_tag(spec_name)}_" + _UNSAFE.sub("_", f"{component}_{policy}".lower())
    if len(name) > MAX_SLOT_NAME:
        name = name[: MAX_SLOT_NAME - 7] + "_" + _hex(f"{spec_name}/{component}/{policy}")
    return name


def legacy_wal_slot_name(component: str) -> str:
    """The default WAL slot name before names carried the spec (``drflow_wal_<component>``)."""
    return WAL_PREFIX + component.replace("-", "_")


def node_slot_name(node_name: str) -> str:
    """The slot a rebuild creates for a node whose spec entry names none (``drflow_<node>``)."""
    return (DRFLOW_PREFIX + _UNSAFE.sub("_", node_name.lower()))[:MAX_SLOT_NAME]


@dataclass(frozen=True)
class SlotClaim:
    """One slot a spec owns on one primary."""

    slot: str
    conn_id: str
    """The primary's connection: where the slot lives."""
    kind: SlotKind
    spec: str
    component: str
    owner: str
    """``WAL policy hourly-wal`` or ``replica replica-1``: who uses the slot."""
    limit_bytes: int
    """WAL the slot may hold back before it is an alert."""
    loc: Loc = field(default=(), compare=False)
    """Where the spec names it (for validation errors); not part of the claim, nor of its params."""

    def describe(self) -> str:
        return f"{self.owner} of {self.spec}/{self.component}"

    def to_params(self) -> dict[str, object]:
        """Plain JSON for a task's parameters (without the spec location)."""
        return {
            "slot": self.slot,
            "conn_id": self.conn_id,
            "kind": self.kind,
            "spec": self.spec,
            "component": self.component,
            "owner": self.owner,
            "limit_bytes": self.limit_bytes,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SlotClaim:
        return cls(
            slot=str(params["slot"]),
            conn_id=str(params["conn_id"]),
            kind=params["kind"],
            spec=str(params["spec"]),
            component=str(params["component"]),
            owner=str(params["owner"]),
            limit_bytes=int(params["limit_bytes"]),
        )


def component_claims(spec: Spec, component: Component, index: int = 0) -> list[SlotClaim]:
    """The slots one component owns on its primary (none without a datastore)."""
    datastore = component.postgres
    if datastore is None:
        return []
    conn_id = datastore.primary.conn_id
    spec_name = spec.metadata.name
    base: Loc = ("components", index)
    claims: list[SlotClaim] = []
    for entry_index, entry in enumerate(component.backups):
        policies = entry.expand() if isinstance(entry, BackupPreset) else [entry]
        for policy in policies:
            if policy.method != "pg_receivewal":
                continue
            loc: Loc = (*base, "backups", entry_index)
            if policy.slot and not isinstance(entry, BackupPreset):
                loc = (*loc, "slot")
            claims.append(
                SlotClaim(
                    slot=wal_slot_name(spec_name, component.name, policy.name, policy.slot),
                    conn_id=conn_id,
                    kind="wal",
                    spec=spec_name,
                    component=component.name,
                    owner=f"WAL policy {policy.name}",
                    limit_bytes=datastore.slot_retention_limit,
                    loc=loc,
                )
            )
    for replica_index, replica in enumerate(datastore.replicas):
        loc = (*base, "datastore", "replicas", replica_index)
        claims.append(
            SlotClaim(
                slot=replica.slot or node_slot_name(replica.name),
                conn_id=conn_id,
                kind="replica",
                spec=spec_name,
                component=component.name,
                owner=f"replica {replica.name}",
                limit_bytes=datastore.replication.max_slot_retained,
                loc=(*loc, "slot") if replica.slot else loc,
            )
        )
    return claims


def spec_claims(spec: Spec) -> list[SlotClaim]:
    """Every slot the spec owns, in spec order."""
    return [claim for index, c in enumerate(spec.components) for claim in component_claims(spec, c, index)]


def conflicts(claims: Iterable[SlotClaim], earlier: Iterable[SlotClaim] = ()) -> list[tuple[SlotClaim, SlotClaim]]:
    """(claim, the earlier claim it collides with): one slot on one primary for two owners.

    Replicas may share a slot (components whose databases live on one cluster stream through one
    replica); a WAL policy's slot is its own: drflow moves it, and nothing else may.
    """
    seen: dict[tuple[str, str], SlotClaim] = {}
    for claim in earlier:
        seen.setdefault((claim.conn_id, claim.slot), claim)
    found: list[tuple[SlotClaim, SlotClaim]] = []
    for claim in claims:
        first = seen.setdefault((claim.conn_id, claim.slot), claim)
        if first is not claim and "wal" in (first.kind, claim.kind):
            found.append((claim, first))
    return found


def check_slots(spec: Spec, source: Source) -> list[Diagnostic]:
    """Errors for slots two owners of this spec would share on one primary."""
    return [_diagnostic(source, claim, first) for claim, first in conflicts(spec_claims(spec))]


def cross_spec_diagnostics(source: Source, claims: list[SlotClaim], earlier: list[SlotClaim]) -> list[Diagnostic]:
    """Errors for this spec's slots that a spec loaded before it already owns on the same primary."""
    return [
        _diagnostic(source, claim, first) for claim, first in conflicts(claims, earlier) if first.spec != claim.spec
    ]


def _diagnostic(source: Source, claim: SlotClaim, first: SlotClaim) -> Diagnostic:
    where = "in this spec" if first.spec == claim.spec else f"in spec {first.spec}"
    message = (
        f"replication slot '{claim.slot}' of {claim.owner} ({claim.component}) on primary {claim.conn_id} is "
        f"already the slot of {first.owner} ({first.component}) {where}: "
        + (
            "two WAL policies moving one slot would let the primary recycle WAL one of them never stored"
            if claim.kind == first.kind == "wal"
            else "a WAL policy moves its slot, so it cannot share it with a replica"
        )
    )
    hint = "give one of them another `slot:` name, or remove `slot:` to get drflow's default name (unique per spec)"
    return source.diagnostic(claim.loc, message, hint)


@dataclass(frozen=True)
class SlotWatch:
    """What a slot check of one primary needs: the spec's slots there, the components whose old-style WAL slot
    names count as orphans, this spec's own name prefix (None: every drflow-named slot without an owner is an
    orphan), the limit for orphans, and the command that drops a slot (``{slot}`` for its name)."""

    claims: tuple[SlotClaim, ...]
    components: tuple[str, ...]
    orphan_prefixes: tuple[str, ...] | None
    orphan_limit_bytes: int
    command: str

    def to_params(self) -> dict[str, Any]:
        """Plain JSON for a task's parameters."""
        return {
            "claims": [c.to_params() for c in self.claims],
            "components": list(self.components),
            "orphan_prefixes": list(self.orphan_prefixes) if self.orphan_prefixes is not None else None,
            "orphan_limit_bytes": self.orphan_limit_bytes,
            "command": self.command,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SlotWatch:
        """The inverse of :meth:`to_params`; a missing key is a ValueError naming it."""
        missing = [
            key
            for key in ("claims", "components", "orphan_prefixes", "orphan_limit_bytes", "command")
            if key not in params
        ]
        if missing:
            raise ValueError(
                f"slot watch settings lack {', '.join(missing)}; this is a drflow defect: rebuild the DAG with "
                "this drflow version, or report it"
            )
        prefixes = params["orphan_prefixes"]
        return cls(
            claims=tuple(SlotClaim.from_params(c) for c in params["claims"]),
            components=tuple(str(c) for c in params["components"]),
            orphan_prefixes=tuple(str(p) for p in prefixes) if prefixes is not None else None,
            orphan_limit_bytes=int(params["orphan_limit_bytes"]),
            command=str(params["command"]),
        )


def slot_watch(spec: Spec, component: Component, source: str) -> SlotWatch:
    """The slot check of ``component``'s primary (see :class:`SlotWatch`)."""
    assert component.postgres is not None
    conn_id = component.postgres.primary.conn_id
    return SlotWatch(
        claims=tuple(c for c in spec_claims(spec) if c.conn_id == conn_id),
        components=tuple(
            c.name for c in spec.components if c.postgres is not None and c.postgres.primary.conn_id == conn_id
        ),
        orphan_prefixes=(f"{WAL_PREFIX}{spec_tag(spec.metadata.name)}_",),
        orphan_limit_bytes=component.postgres.slot_retention_limit,
        command=f"drflow slots drop --spec {source or '<spec file>'} --component {component.name} --slot {{slot}}",
    )
