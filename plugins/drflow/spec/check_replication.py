"""Replication modes the spec asks for that it cannot hold, and critical data replicated asynchronously."""

from __future__ import annotations

from drflow.spec.diagnostics import Diagnostic
from drflow.spec.model import Spec
from drflow.spec.replication import replication_mode
from drflow.spec.source import Source


def check_replication_modes(spec: Spec, source: Source) -> list[Diagnostic]:
    """A critical component replicated asynchronously (a warning), and a synchronous mode nothing can hold."""
    found = []
    for index, component in enumerate(spec.components):
        datastore = component.postgres
        if datastore is None:
            continue
        watch, loc = datastore.replication, ("components", index, "datastore", "replication", "mode")
        if component.criticality == "critical" and watch.mode == "asynchronous":
            message = (
                f"critical component '{component.name}' replicates asynchronously: a failover can lose the commits "
                "its replicas had not received yet"
            )
            hint = "the seed asks for synchronous replication of critical data: set mode: synchronous (or remove it)"
            found.append(source.diagnostic(loc, message, hint, severity="warning"))
        if replication_mode(watch, component.criticality) != "synchronous":
            continue
        why = "mode: synchronous" if watch.mode else "a critical component (its default mode is synchronous)"
        if not datastore.replicas and watch.mode == "synchronous":
            message = f"component '{component.name}' asks for synchronous replication but has no replica"
            hint = "declare its standby under datastore.replicas, or set mode: asynchronous"
            found.append(source.diagnostic(loc, message, hint))
        elif datastore.replicas and not watch.enabled:
            message = (
                f"component '{component.name}' needs synchronous replication ({why}), but its replication watch is "
                "off, so nothing notices when the primary stops waiting for a standby"
            )
            hint = "remove replication.enabled: false"
            found.append(source.diagnostic(loc[:-1], message, hint, severity="warning"))
    return found
