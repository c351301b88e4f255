"""`drflow restore` of a files or s3-prefix component: replay its backup chain into a directory, no Airflow."""

from __future__ import annotations

from pathlib import Path

from drflow.cli.common import err, fail, out
from drflow.units import human_duration


def restore_files_component(
    spec_name: str, component: str, targets: list[dict[str, object]], to: Path, backup: str | None, at: str | None
) -> None:
    """Restore the entry (``--backup``, else the newest finished by ``--at``, else the newest) into ``to``."""
    from drflow.jobs.files import restore_files
    from drflow.when import parse_run_time

    try:
        when = parse_run_time(at, "--at") if at else None
        if backup and when:
            raise ValueError("give --backup or --at, not both (nothing was changed)")
        result = restore_files(
            spec_name,
            component,
            targets,
            to.resolve(),
            backup_id=backup,
            at=when,
            say=lambda message: err.print(f"warning: {message}", highlight=False, markup=False),
        )
    except Exception as exc:  # every error here carries its own what-to-do
        raise fail(str(exc)) from None
    verdict = {True: "; tree digest equal to the one recorded at backup time", False: "", None: ""}[result.digest_ok]
    out.print(
        f"restored backup {result.manifest.backup_id} of {component} into {to} by replaying "
        f"{' → '.join(result.chain)} (fetch {human_duration(result.fetch_s)}, apply "
        f"{human_duration(result.apply_s)}){verdict}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if result.digest_ok is False:
        raise fail(
            f"the restored tree in {to} differs from the tree backup {result.manifest.backup_id} recorded; "
            "keep it for inspection, restore an older backup, and take a full backup now"
        )
