"""RPO compliance of a component's configuration (`config:`, backed up after each change).

A config version's age alone is not data at risk: a config unchanged for a month loses nothing. What a
disaster would lose is a change not stored yet. So each target's newest version is a source (its age), and
the live config is hashed (a read, nothing written): when its hash equals a stored newest version, nothing is
at risk (exposure 0); otherwise the change happened after that version, so at most its age is lost. A
config that cannot be read is a problem, and the age counts (the upper bound).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drflow.engines.config.source import ConfigSourceError, read_config
from drflow.jobs.config import component_versions
from drflow.spec.config import ConfigSource
from drflow.store.base import StoreError
from drflow.units import human_duration


def config_exposure(
    spec_name: str, component: str, source: ConfigSource, targets: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], float | None, list[str]]:
    """Sources (newest version per target), the config's exposure in seconds (None: no version), problems."""
    sources: list[dict[str, Any]] = []
    problems: list[str] = []
    for target in targets:
        name = str(target["name"])
        try:
            newest = component_versions(spec_name, component, target).newest()
        except StoreError as exc:
            problems.append(f"{name}: config versions unreadable: {exc}")
            continue
        if newest is None:
            problems.append(
                f"{name}: holds no config version of {component} yet; the config backup DAG runs after the "
                "first change its triggerer sees: check that the triggerer runs"
            )
            continue
        age = (now - datetime.fromisoformat(newest.taken_at)).total_seconds()
        entry = {"source": f"config:{name}", "lag_s": round(age, 3), "version_id": newest.version_id}
        sources.append({**entry, "sha256": newest.sha256})
    if not sources:
        return sources, None, problems
    try:
        live = read_config(source).sha256
    except (ConfigSourceError, OSError) as exc:
        problems.append(f"the live config could not be read to compare with the newest version: {exc}")
        live = None
    for entry in sources:
        entry["current"] = entry["sha256"] == live
    if any(entry["current"] for entry in sources):
        return sources, 0.0, problems
    newest_age = min(entry["lag_s"] for entry in sources)
    if live is not None:
        problems.append(
            f"the live config (sha256 {live[:12]}…) differs from every stored version: a change of the last "
            f"{human_duration(newest_age)} is not backed up yet; check the config backup DAG and the triggerer"
        )
    return sources, newest_age, problems
