"""The verdict of a config drill, as the drill report of kind ``drill`` stores it.

A config is backed up after each change, so the age of its newest version is not data at risk (a config
unchanged for a month loses nothing): the drill's recovery point is what a restore at that moment would lose,
0 when the live config still equals the restored version, else that version's age (the change came later;
the same reasoning as the RPO report's, ``jobs/rpo_config.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drflow.jobs.drill import with_verdict


def judge_config_drill(
    result: Mapping[str, Any],
    *,
    live_sha256: str | None,
    rto_s: int,
    rpo_s: int,
    now: datetime,
) -> dict[str, Any]:
    """``result`` of ``config_drill`` judged against the objectives; ``live_sha256`` None: unreadable."""
    version_age_s = (now - datetime.fromisoformat(str(result["taken_at"]))).total_seconds()
    current = live_sha256 is not None and live_sha256 == result["expected_sha256"]
    changes_not_stored_s = 0.0 if current else version_age_s
    problems: list[str] = []
    warnings: list[str] = []
    if not result["hash_matches"]:
        problems.append(
            f"version {result['version_id']} restored with hash {result['restored_sha256']}, not the recorded "
            f"{result['expected_sha256']}: the stored copy is corrupt; run the config backup again and check the store"
        )
    validation = result.get("validation")
    if validation is not None and not validation.get("passed", True):
        problems.append(f"validation command failed: {validation.get('error')}")
    for skipped in result.get("skipped_targets") or []:
        problems.append(f"{skipped}; the drill restored from {result.get('target')} instead: repair that copy")
    rto_met = float(result["restore_s"]) <= rto_s
    if not rto_met:
        problems.append(f"restore took {float(result['restore_s']):.0f}s, over the RTO of {rto_s}s")
    if live_sha256 is None:
        warnings.append("the live config could not be read: its newest version's age counts as the recovery point")
    elif not current:
        warnings.append(
            f"the live config differs from the newest stored version {result['version_id']}: a change of the last "
            f"{version_age_s:.0f}s is not backed up yet; check the config backup DAG and the triggerer"
        )
    rpo_met = changes_not_stored_s <= rpo_s
    measured = {
        **result,
        "backup_finished_at": result["taken_at"],
        "version_age_s": round(version_age_s, 3),
        # What a restore now would lose: the drill's measured recovery point (see the module's docstring).
        "backup_age_s": round(changes_not_stored_s, 3),
        "live_matches_version": current,
    }
    return with_verdict(measured, rto_s, rpo_s, rto_met, rpo_met, problems, warnings)
