"""The typed hand-off of snapshot sources from plan builders to operators (see :mod:`drflow.contracts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

from drflow.contracts import ContractError, _need, _optional_str
from drflow.retention import RETENTION_POLICIES, RetentionPolicy


@dataclass(frozen=True)
class SnapshotRun:
    """A snapshot policy of a component: the source, its copy regions, and the targets that record it.

    The snapshot backup task gets it as ``snapshot=``, and the snapshot drill task too.
    """

    spec_name: str
    component: str
    policy: str
    targets: Sequence[Mapping[str, Any]]
    """Storage targets as the spec writes them (``model_dump(mode="json")``): where the record goes."""
    retention_days: int
    retention_policy: RetentionPolicy
    kind: Literal["ebs", "rds"]
    conn_id: str
    """The aws connection."""
    region: str
    copy_to: tuple[str, ...] = ()
    volume_id: str | None = None
    volume_tags: Mapping[str, str] = field(default_factory=dict)
    db_instance: str | None = None
    instance_class: str = "db.t3.micro"
    zone: str | None = None
    """Availability zone of what a drill creates (default: the drill region + 'a' for volumes)."""
    poll_s: float = 15.0
    timeout_s: float = 6 * 3600.0
    work_dir: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "spec_name",
        "component",
        "policy",
        "targets",
        "retention_days",
        "retention_policy",
        "kind",
        "conn_id",
        "region",
        "copy_to",
        "poll_s",
        "timeout_s",
    )

    def to_params(self) -> dict[str, Any]:
        return {
            "spec_name": self.spec_name,
            "component": self.component,
            "policy": self.policy,
            "targets": [dict(t) for t in self.targets],
            "retention_days": self.retention_days,
            "retention_policy": self.retention_policy,
            "kind": self.kind,
            "conn_id": self.conn_id,
            "region": self.region,
            "copy_to": list(self.copy_to),
            "volume_id": self.volume_id,
            "volume_tags": dict(self.volume_tags),
            "db_instance": self.db_instance,
            "instance_class": self.instance_class,
            "zone": self.zone,
            "poll_s": self.poll_s,
            "timeout_s": self.timeout_s,
            "work_dir": self.work_dir,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SnapshotRun:
        what = "snapshot policy run"
        values = {key: _need(params, key, what) for key in cls.FIELDS}
        policy, kind = str(values["retention_policy"]), str(values["kind"])
        if policy not in RETENTION_POLICIES:
            raise ContractError(f"{what}: retention_policy {policy!r} is not one of {', '.join(RETENTION_POLICIES)}")
        if kind not in ("ebs", "rds"):
            raise ContractError(f"{what}: kind {kind!r} is not ebs or rds")
        return cls(
            spec_name=str(values["spec_name"]),
            component=str(values["component"]),
            policy=str(values["policy"]),
            targets=tuple(dict(t) for t in values["targets"]),
            retention_days=int(values["retention_days"]),
            retention_policy=cast(RetentionPolicy, policy),
            kind=cast(Literal["ebs", "rds"], kind),
            conn_id=str(values["conn_id"]),
            region=str(values["region"]),
            copy_to=tuple(str(r) for r in values["copy_to"]),
            volume_id=_optional_str(params.get("volume_id")),
            volume_tags={str(k): str(v) for k, v in (params.get("volume_tags") or {}).items()},
            db_instance=_optional_str(params.get("db_instance")),
            instance_class=str(params.get("instance_class") or "db.t3.micro"),
            zone=_optional_str(params.get("zone")),
            poll_s=float(values["poll_s"]),
            timeout_s=float(values["timeout_s"]),
            work_dir=_optional_str(params.get("work_dir")),
        )
