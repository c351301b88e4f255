"""Checks of what storage targets can do for the backup policies that use them: a compliance retention needs
objects that nobody can delete early (S3 Object Lock), which a local directory cannot give.

Like the other reference checks these read the raw YAML values. Called from drflow.spec.check.check_references.
"""

from __future__ import annotations

from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Source


def check_storage(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    local = {t.get("name") for _, t in _items(data, "storage") if t.get("type") == "local"}
    found: list[Diagnostic] = []
    for c_index, component in _items(data, "components"):
        for p_index, policy in _items(component, "backups"):
            retention = policy.get("retention")
            if not isinstance(retention, dict) or retention.get("policy") != "compliance":
                continue
            targets = policy.get("targets")
            for t_index, ref in enumerate(targets if isinstance(targets, list) else []):
                if isinstance(ref, str) and ref in local:
                    name = policy.get("name") or policy.get("preset")
                    message = (
                        f"backup policy '{name}' keeps its backups under compliance retention, which locks every "
                        f"object so nobody can delete it early (S3 Object Lock), but storage target '{ref}' is a "
                        "local directory, which cannot lock"
                    )
                    hint = (
                        "send these backups to S3 targets whose buckets have Object Lock enabled, "
                        "or use retention policy governance or standard"
                    )
                    loc = ("components", c_index, "backups", p_index, "targets", t_index)
                    found.append(source.diagnostic(loc, message, hint))
    return found
