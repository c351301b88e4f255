"""One base backup per cluster, shared by the components that live on it (see :mod:`drflow.spec.clusters`).

Every component's backup DAG of a shared policy still runs; scheduled runs of one slot get the same backup
id. Each run takes the cluster's advisory lock on the server it backs up. The first to hold it finds no
backup of that id yet and takes it as the *holder*: the objects go once into its own backup directory, and
its manifest carries ``shared`` (the cluster, the components, each one's validation values, recorded
right after the backup in its own database). The others, once they get the lock, find that manifest in
each target and commit their own entry pointing at the holder's objects: one object set in the store,
an entry in every component's catalog, so each component's restores, drills, RPO and retention work as
before. Retention deletes the objects only with the last entry that records them
(:meth:`drflow.store.catalog.Catalog.discard`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from drflow.engines.postgres.advisory import advisory_lock
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.spec.clusters import ClusterShare
from drflow.store.base import StoreError
from drflow.store.fanout import Fanout
from drflow.store.manifest import BackupManifest

log = logging.getLogger(__name__)


def take_shared(
    fanout: Fanout,
    share: ClusterShare,
    *,
    spec_name: str,
    lock_conn: PgConnInfo,
    timeout_s: float | None,
    take: Callable[[str], BackupManifest],
) -> BackupManifest:
    """Record the cluster backup another component took for this backup id, or take it (``take(cluster)``)."""
    component, backup_id = fanout.component, fanout.backup_id
    # Advisory locks are per database: every member locks in the first member's.
    lock_conn = dataclasses.replace(lock_conn, dbname=share.members[0].database)
    with advisory_lock(lock_conn, f"drflow-backup:{spec_name}:{backup_id}", timeout_s=timeout_s) as sysid:
        cluster = f"{share.key}#{sysid}"
        held = _held(fanout, share, cluster)
        if not held:
            return take(cluster)
        recorded: BackupManifest | None = None
        for copy in fanout.pending:
            source = held.get(copy.name)
            if source is None:
                holder = next(iter(held.values())).data_component
                fanout.fail(
                    copy,
                    f"the cluster backup {backup_id} that {holder} took is not stored in this target; the retry of "
                    f"{holder}'s backup task stores it there, then retry this one",
                )
                continue
            entry = reference(source, component)
            try:
                copy.catalog.commit(entry)
            except StoreError as exc:
                fanout.fail(copy, str(exc))
                continue
            copy.committed = recorded = entry
        log.info(
            "recorded the cluster backup %s of %s for %s in %s (its objects stay in %s's directory)",
            backup_id,
            cluster,
            component,
            ", ".join(c.name for c in fanout.committed),
            next(iter(held.values())).data_component,
        )
        return fanout.finish(recorded or next(iter(held.values())))


def reference(source: BackupManifest, component: str) -> BackupManifest:
    """``component``'s entry of the shared backup ``source`` records: same objects, its own validation values."""
    assert source.shared is not None
    return source.model_copy(
        update={
            "component": component,
            "validation_values": dict(source.shared.validation.get(component, {})),
            # The typed baseline was read in the holder's database: this component's checks report "no baseline".
            "validation_baseline": None,
            "encryption": [],
            "object_lock": None,
        }
    )


def _held(fanout: Fanout, share: ClusterShare, cluster: str) -> dict[str, BackupManifest]:
    """By target: an entry of another component recording this backup id of the same cluster."""
    held: dict[str, BackupManifest] = {}
    for copy in fanout.copies:
        if copy.error is not None:
            continue
        for other in share.components:
            if other == fanout.component:
                continue
            try:
                if not copy.catalog.store.exists(copy.catalog.manifest_key(other, fanout.backup_id)):
                    continue
                manifest = copy.catalog.get(other, fanout.backup_id)
            except StoreError as exc:
                log.warning("cannot read %s's entry of %s in %s: %s", other, fanout.backup_id, copy.name, exc)
                continue
            if manifest.shared is not None and manifest.shared.cluster == cluster:
                held[copy.name] = manifest
                break
    return held
