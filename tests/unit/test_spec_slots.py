"""Slot names and owners from the spec: unique per spec, at most 63 characters, collisions are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text, load_specs
from drflow.spec.slots import MAX_SLOT_NAME, spec_claims, wal_slot_name
from drflow.spec.validate import validate_paths

SPEC = """\
version: 1
metadata: {{name: {name}, owner: ops}}
regions: [{{name: east, role: primary}}, {{name: west}}]
storage:
  - {{name: local-a, type: local, path: /srv/backups/a}}
components:
  - name: orders
    criticality: low
    rto: 1h
    rpo: 1h
    datastore:
      type: postgres
      database: {database}
      primary: {{conn_id: {conn_id}, region: east}}
      replicas:
        - {{name: replica-1, conn_id: pg_replica, region: west, slot: shared_replica}}
    backups:
      - {{name: wal, type: incremental, method: pg_receivewal, schedule: "@hourly", targets: [local-a],
          retention: {{days: 7}}{slot}}}
{more}"""
SECOND_WAL = """\
      - {name: wal-2, type: incremental, method: pg_receivewal, schedule: "@hourly", targets: [local-a],
          retention: {days: 7}, slot: orders_wal}
"""


def _text(
    name: str = "shop", *, slot: str = "", more: str = "", conn_id: str = "pg_primary", database: str = "shop"
) -> str:
    return SPEC.format(name=name, slot=f", slot: {slot}" if slot else "", more=more, conn_id=conn_id, database=database)


def test_default_wal_slots_differ_between_specs_and_policies_and_fit_in_63_characters() -> None:
    a, b = wal_slot_name("shop", "orders", "wal"), wal_slot_name("shop-eu", "orders", "wal")
    assert a != b and a.startswith("drflow_wal_") and a.endswith("_orders_wal")
    assert wal_slot_name("shop", "orders", "wal-2") != a
    long = wal_slot_name("s" * 63, "c" * 63, "p" * 63)
    other = wal_slot_name("s" * 63, "c" * 63, "p" * 62 + "q")
    assert len(long) == len(other) == MAX_SLOT_NAME and long != other
    assert wal_slot_name("shop", "orders", "wal", "mine") == "mine"


def test_two_specs_on_one_cluster_get_their_own_default_slots(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_text("shop"))
    (tmp_path / "b.yaml").write_text(_text("shop-eu", database="shop_eu"))
    loaded, failed = load_specs([tmp_path])
    assert failed == [] and len(loaded) == 2
    wal = [c.slot for spec in loaded for c in spec_claims(spec.spec) if c.kind == "wal"]
    assert len(set(wal)) == 2
    # Replicas may share a slot (one replica streams every database of the cluster).
    assert [c.slot for spec in loaded for c in spec_claims(spec.spec) if c.kind == "replica"] == ["shared_replica"] * 2


def test_two_wal_policies_on_one_slot_are_an_error_at_the_second() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(_text(slot="orders_wal", more=SECOND_WAL), "shop.yaml")
    [error] = caught.value.errors
    assert (error.line, error.path) == (21, "components[orders].backups[wal-2].slot")
    assert "replication slot 'orders_wal' of WAL policy wal-2 (orders) on primary pg_primary is already the slot " in (
        error.message
    )
    assert "would let the primary recycle WAL one of them never stored" in error.message
    assert "give one of them another `slot:` name" in error.hint


def test_a_wal_policy_cannot_take_a_replica_slot() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(_text(slot="shared_replica"), "shop.yaml")
    [error] = caught.value.errors
    assert error.path == "components[orders].datastore.replicas[replica-1].slot"
    assert "already the slot of WAL policy wal (orders) in this spec" in error.message
    assert "cannot share it with a replica" in error.message


def test_the_same_slot_in_two_specs_on_one_primary_fails_the_later_spec(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_text("shop", slot="orders_wal"))
    (tmp_path / "b.yaml").write_text(_text("shop-eu", slot="orders_wal", database="shop_eu"))
    (tmp_path / "c.yaml").write_text(_text("shop-us", slot="orders_wal", conn_id="pg_other"))  # another cluster
    loaded, failed = load_specs([tmp_path])
    assert [spec.name for spec in loaded] == ["shop", "shop-us"]
    [(path, [error])] = failed
    assert path == tmp_path / "b.yaml" and error.line == 19
    assert "is already the slot of WAL policy wal (orders) in spec shop" in error.message
    report = validate_paths([tmp_path])
    assert [e.message for e in report.errors] == [error.message]
