"""Checks of what storage targets can do for the backup policies that use them: a compliance retention needs
objects that nobody can delete early (S3 Object Lock), which a local directory cannot give.

Like the other reference checks these read the raw YAML values. Called from drflow.spec.check.check_references.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drflow.spec.check_helpers import choices as _choices
from drflow.spec.check_helpers import items as _items
from drflow.spec.check_helpers import names as _names
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.source import Loc, Source
from drflow.spec.types import format_duration
from drflow.storage_classes import RETRIEVAL

if TYPE_CHECKING:
    from drflow.spec.model import Spec


def check_storage(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    local = {t.get("name") for _, t in _items(data, "storage") if t.get("type") == "local"}
    defined = _names(data, "storage")
    found: list[Diagnostic] = []
    for c_index, component in _items(data, "components"):
        for p_index, policy in _items(component, "backups"):
            found += _check_copy_to(source, ("components", c_index, "backups", p_index), policy, defined)
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


def _check_copy_to(source: Source, loc: Loc, policy: dict[str, Any], defined: list[str] | None) -> list[Diagnostic]:
    """copy_to names defined targets, none that the backup already writes, and not for pgBackRest's repositories."""
    copy_to = policy.get("copy_to")
    if not isinstance(copy_to, list):
        return []
    name, targets = policy.get("name"), policy.get("targets")
    found = []
    if copy_to and policy.get("method") == "pgbackrest":
        message = f"backup policy '{name}' uses pgBackRest, whose repositories drflow does not copy"
        hint = "list the secondary-region target under targets (pgBackRest writes every repository itself)"
        found.append(source.diagnostic((*loc, "copy_to"), message, hint, key=True))
    for index, ref in enumerate(copy_to):
        if not isinstance(ref, str):
            continue
        if defined is not None and ref not in defined:
            message = f"backup policy '{name}' copies backups to storage target '{ref}', which is not defined"
            hint = _choices(ref, defined, "defined storage targets", "define it under 'storage:'")
            found.append(source.diagnostic((*loc, "copy_to", index), message, hint))
        elif isinstance(targets, list) and ref in targets:
            message = f"storage target '{ref}' is both written by backup policy '{name}' and a copy target of it"
            hint = "keep it in one list: targets (written at backup time) or copy_to (copied after verify)"
            found.append(source.diagnostic((*loc, "copy_to", index), message, hint))
    return found


def check_tiers(spec: Spec, source: Source) -> list[Diagnostic]:
    """Warn when every target holding a component's backups is so cold that reading one back alone takes
    longer than the component's RTO (an S3 restore request of GLACIER or DEEP_ARCHIVE data)."""
    found = []
    for index, component in enumerate(spec.components):
        defined = {t.name for t in spec.storage}
        names = {n for p in component.backup_policies for n in [*p.targets, *p.copy_to] if n in defined}
        if not names:
            continue
        waits = {name: RETRIEVAL[str(getattr(spec.target(name), "storage_class", "STANDARD"))] for name in names}
        fastest = min(waits.values())
        if fastest > component.rto:
            message = (
                f"every copy of component '{component.name}' is in an archive storage class: reading one back "
                f"takes up to {format_duration(fastest)} before the restore starts, longer than its RTO of "
                f"{format_duration(component.rto)}"
            )
            hint = (
                "keep one target in STANDARD, STANDARD_IA or GLACIER_IR (move older backups with `transition:` "
                "instead), or raise the RTO"
            )
            found.append(source.diagnostic(("components", index, "rto"), message, hint, severity="warning"))
    return found
