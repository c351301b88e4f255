"""Store operators: verify a stored backup, pick the backup a restore will use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator


class VerifyBackupOperator(BaseOperator):
    """Re-read the new backup from every target and check each object's size and sha256."""

    ui_color = "#d5f5e3"

    def __init__(self, *, spec_name: str, component: str, targets: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.targets = [dict(t) for t in targets]

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from drflow.operators.common import upstream_result
        from drflow.store.factory import target_catalogs

        backup_id = upstream_result(context, "take_backup")["backup_id"]
        problems: list[str] = []
        for name, catalog in target_catalogs(self.spec_name, self.targets):
            manifest = catalog.get(self.component, backup_id)
            found = catalog.verify(manifest)
            problems.extend(f"{name}: {problem}" for problem in found)
            self.log.info("%s: %d objects verified, %d problems", name, len(manifest.objects), len(found))
        if problems:
            raise AirflowFailException(
                f"backup {backup_id} is damaged in the store:\n" + "\n".join(problems) + "\n"
                "Do not rely on it: run the backup DAG again, and check the storage target."
            )
        return {"backup_id": backup_id, "verified_targets": [t["name"] for t in self.targets]}


class SelectBackupOperator(BaseOperator):
    """The backup a restore will use: the one named in the trigger form, or the newest complete one in the
    target or, when it lacks one, in a fallback target."""

    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        spec_name: str,
        component: str,
        target: Mapping[str, Any],
        policy: str | None = None,
        fallback_targets: Sequence[Mapping[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec_name = spec_name
        self.component = component
        self.target = dict(target)
        self.fallback_targets = [dict(t) for t in fallback_targets]
        self.policy = policy

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.jobs.restore import find_copies
        from drflow.operators.common import manifest_summary
        from drflow.store.factory import target_catalogs

        catalogs = target_catalogs(self.spec_name, [self.target, *self.fallback_targets])
        requested = (context.get("params") or {}).get("backup_id") or None
        choice = find_copies(catalogs, self.component, requested, policy=self.policy)
        for name, why in choice.unreadable:
            self.log.warning("skipped storage target %s: %s", name, why)
        manifest = choice.copies[0].manifest
        self.log.info(
            "selected backup %s (finished %s), held by %s",
            manifest.backup_id,
            manifest.finished_at,
            ", ".join(c.target for c in choice.copies),
        )
        return manifest_summary(manifest)
