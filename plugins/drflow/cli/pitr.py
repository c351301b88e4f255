"""`drflow restore --target-time T | --target-lsn L`: point-in-time recovery without Airflow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drflow.units import human_duration


def restore_point_in_time(
    spec_name: str,
    component: str,
    targets: Sequence[Mapping[str, Any]],
    to: Path,
    *,
    bin_dir: Path,
    backup: str | None,
    target_time: str | None,
    target_lsn: str | None,
    start: bool,
) -> list[str]:
    """Recover from the first storage target that reaches the target with intact copies; return the lines
    to print (a skipped copy first, as a warning).

    Raises ValueError (TargetOutOfRangeError with the recoverable range of every target, a bad
    time or LSN, a non-empty directory) before anything is written, or RestoreError.
    """
    from drflow.engines.postgres.lsn import parse_lsn
    from drflow.hosts import LocalHost
    from drflow.jobs.pitr import check_restore_dir, parse_target_time, plan_in_targets, restore_to_point_from_any
    from drflow.store.factory import target_catalogs

    if target_time and target_lsn:
        raise ValueError("give --target-time or --target-lsn, not both")
    when = parse_target_time(target_time) if target_time else None
    if target_lsn:
        parse_lsn(target_lsn)
    data_dir = check_restore_dir(str(to.resolve()))
    plans = plan_in_targets(target_catalogs(spec_name, targets), component, when, target_lsn, backup_id=backup)
    lines: list[str] = []
    result, used = restore_to_point_from_any(
        plans,
        data_dir,
        host=LocalHost(),
        bin_dir=bin_dir,
        keep_running=start,
        say=lambda message: lines.append(f"warning: {message}"),
    )
    plan = used.plan
    lines += [
        f"recovered {component} from {used.target} to {plan.describe_target()}: full backup {plan.base.backup_id} "
        f"+ {len(plan.wal)} WAL entries into {data_dir} (fetch {human_duration(result.fetch_s)}, lay out "
        f"{human_duration(result.lay_out_s)}, replay {human_duration(result.recovery_s)})",
        f"replayed up to LSN {result.replayed_lsn}; last commit replayed: {result.last_replayed_commit or 'none'}",
    ]
    if result.port:
        lines.append(
            f"PostgreSQL is running on 127.0.0.1:{result.port}; stop it with: {bin_dir}/pg_ctl -D {data_dir} stop"
        )
    else:
        lines.append(f"the server was stopped cleanly; start it with: {bin_dir}/pg_ctl -D {data_dir} start")
    return lines
