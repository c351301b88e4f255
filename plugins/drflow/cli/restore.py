"""`drflow restore`: a component's backup from the store into a directory, without Airflow."""

from __future__ import annotations

from pathlib import Path

from drflow.cli.common import err, fail, load_one, out
from drflow.units import human_duration


def restore(
    spec: Path,
    component: str,
    to: Path,
    backup: str | None,
    target: str | None,
    start: bool,
    target_time: str | None,
    target_lsn: str | None,
    clean_incomplete: bool,
    zone: str | None = None,
    at: str | None = None,
) -> None:
    """Restore from the first intact copy (or, with a target time or LSN, recover to it); see `drflow restore`."""
    from drflow.engines.postgres.bindir import datastore_bin_dir
    from drflow.hosts import LocalHost
    from drflow.jobs.restore import find_copies, restore_intact_copy, start_scratch_instance
    from drflow.store.factory import target_catalogs

    loaded = load_one(spec, incident=True, component=component, target=target)
    try:
        chosen = loaded.spec.component(component)
    except KeyError:
        raise fail(
            f"no component {component!r} in {spec}; known: {', '.join(c.name for c in loaded.spec.components)}"
        ) from None
    targets = [t.model_dump(mode="json") for t in loaded.spec.storage if target in (None, t.name)]
    if not targets:
        raise fail(f"no storage target {target!r} in {spec}; known: {', '.join(t.name for t in loaded.spec.storage)}")
    if chosen.snapshots is not None and (chosen.datastore is None or zone is not None):
        from drflow.cli.snapshot import restore_snapshot_backup

        # A snapshot source restores into AWS: --to names the region, --zone the availability zone.
        return restore_snapshot_backup(loaded.spec, chosen, str(to), zone, backup, targets)
    if chosen.datastore is None:
        raise fail(f"component {component!r} has no datastore to restore")
    if chosen.postgres is None:  # a files or s3-prefix datastore
        from drflow.cli.restore_files import restore_files_component

        return restore_files_component(loaded.spec.metadata.name, component, targets, to, backup, at or target_time)
    if at is not None:  # a database's state at a time is a point-in-time recovery
        if target_time is not None and target_time != at:
            raise fail(f"--at {at} and --target-time {target_time} disagree; give one of them (nothing was changed)")
        target_time = at
    bin_dir = datastore_bin_dir(chosen.postgres.bin_dir, chosen.postgres.version)
    if to.exists() and not to.is_dir():
        raise fail(f"--to {to} is a file, not a directory; give a new or empty directory (nothing was changed)")
    if to.is_dir():
        from drflow.engines.postgres import incomplete

        if clean_incomplete and (note := incomplete.clean_incomplete(to, host=LocalHost(), bin_dir=bin_dir)):
            err.print(note, markup=False, highlight=False)
        incomplete.check_incomplete(to)
    if to.is_dir() and any(to.iterdir()):
        raise fail(f"--to {to} is not empty; restore into a new or empty directory (nothing was changed)")
    if target_time or target_lsn:
        from drflow.cli.pitr import restore_point_in_time

        try:
            lines = restore_point_in_time(
                loaded.spec.metadata.name,
                component,
                targets,
                to,
                bin_dir=bin_dir,
                backup=backup,
                target_time=target_time,
                target_lsn=target_lsn,
                start=start,
            )
        except Exception as exc:  # every error here carries its own what-to-do
            raise fail(str(exc)) from None
        for line in lines:
            out.print(line, highlight=False, markup=False)
        return
    host = LocalHost()
    choice = find_copies(target_catalogs(loaded.spec.metadata.name, targets), component, backup)
    for name, why in choice.unreadable:
        err.print(f"warning: skipped storage target {name}: {why}", highlight=False, markup=False)
    try:
        result, copy = restore_intact_copy(
            choice,
            to.resolve(),
            host=host,
            bin_dir=bin_dir,
            say=lambda message: err.print(f"warning: {message}", highlight=False, markup=False),
            sync=start,
        )
    except Exception as exc:  # every engine error carries its own what-to-do
        raise fail(str(exc)) from None
    out.print(
        f"restored backup {copy.manifest.backup_id} of {component} from {copy.target} into {to} "
        f"(fetch {human_duration(result.fetch_s)}, lay out and pg_verifybackup {human_duration(result.lay_out_s)})"
    )
    if start:
        instance = start_scratch_instance(to.resolve(), host=host, bin_dir=bin_dir)
        out.print(f"PostgreSQL is running on 127.0.0.1:{instance.port}; stop it with: {bin_dir}/pg_ctl -D {to} stop")
