"""Incident-time loading: a spec broken elsewhere still gives the component and storage a restore needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.spec.diagnostics import SpecError
from drflow.spec.incident import load_for_incident
from drflow.spec.model import LocalTarget

SPEC = """\
version: 1
metadata: {name: shop, owner: ops}
regions: [{name: here, role: primary}]
storage:
  - {name: local, type: local, path: store}
  - {name: broken, type: s3, bucket: Not_A_Bucket, conn_id: aws, region: here}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1d
    datastore: {type: postgres, database: orders, primary: {conn_id: pg, region: here}}
    backups: [{name: full, type: full, method: pg_basebackup, schedule: "@daily", targets: [local, nowhere],
               retention: {days: 7}}]
    drills: [{name: weekly, type: restore, schedule: "@weekly", policy: nope}]
  - name: billing
    criticality: urgent
    rto: 1h
    rpo: 1d
recovery_plans:
  - name: failover
    scenario: infrastructure-failure
    status: approved
    components: [orders]
    approval: {approvers: [alice]}
    steps: [{name: go, action: promote, component: orders, node: replica-9}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    return path


def test_the_component_and_storage_needed_load_with_a_warning_naming_what_was_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, SPEC)
    with pytest.raises(SpecError):
        load_for_incident(path.with_name("missing.yaml"))
    loaded = load_for_incident(path, "orders")
    assert [c.name for c in loaded.spec.components] == ["orders"]
    assert [t.name for t in loaded.spec.storage] == ["local"]
    store = loaded.spec.storage[0]
    assert isinstance(store, LocalTarget)
    assert store.path == str(tmp_path / "store"), "relative paths still resolve against the spec"
    assert loaded.ignored is not None and loaded.ignored.severity == "warning"
    text = str(loaded.ignored)
    assert "the spec does not validate" in text and "using only component 'orders' and storage 'local'" in text
    for part in (
        "storage[broken] (line 6)",
        "components[orders].backups",
        "components[orders].drills",
        "components[billing] (line 17)",
        "recovery_plans[failover]",
    ):
        assert part in text, part
    assert "drflow validate" in text
    listed = load_for_incident(path)  # backups list: every sound component
    assert [c.name for c in listed.spec.components] == ["orders"]


def test_errors_in_what_the_command_needs_still_refuse(tmp_path: Path) -> None:
    path = _write(tmp_path, SPEC)
    with pytest.raises(SpecError):
        load_for_incident(path, "billing")  # the component asked for is itself broken
    with pytest.raises(SpecError):
        load_for_incident(path, "orders", "broken")  # so is the storage target asked for
    bad_datastore = SPEC.replace("database: orders,", "database: '',")
    with pytest.raises(SpecError):
        load_for_incident(_write(tmp_path, bad_datastore), "orders")
    bad_name = SPEC.replace("name: shop,", "name: Shop!,")
    with pytest.raises(SpecError):
        load_for_incident(_write(tmp_path, bad_name), "orders")
    with pytest.raises(SpecError):
        load_for_incident(_write(tmp_path, SPEC + "  - [unclosed\n"), "orders")


def test_a_valid_spec_loads_whole_without_a_warning(tmp_path: Path) -> None:
    lines = SPEC.split("recovery_plans:")[0].replace(", nowhere", "").replace(", policy: nope", "").splitlines()
    valid = "\n".join(line for line in lines if "broken" not in line).split("  - name: billing")[0]
    loaded = load_for_incident(_write(tmp_path, valid), "orders")
    assert loaded.ignored is None and [t.name for t in loaded.spec.storage] == ["local"]
    assert loaded.spec.component("orders").drills
