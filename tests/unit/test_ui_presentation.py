"""How the DAGs of a spec show in the Airflow UI: names people search for, tags, what starts active, forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drflow.plan.build import build_plans
from drflow.plan.graph import DagPlan
from drflow.spec.load import load_spec, load_spec_text
from tests.plan_inputs import SHOP, plans

SPEC = Path(__file__).resolve().parents[2] / "plan_specs" / "api-marketplace.yaml"
PROTECTION_KINDS = {
    "backup",
    "restore-drill",
    "replication-watch",
    "config-backup",
    "config-drill",
    "report",
    "retention",
}


@pytest.fixture(scope="module")
def shipped() -> dict[str, DagPlan]:
    return {p.dag_id: p for p in build_plans(load_spec(SPEC).spec, SPEC)}


def test_display_names_start_with_what_people_search_for(shipped: dict[str, DagPlan]) -> None:
    names = {dag_id: plan.display_name or "" for dag_id, plan in shipped.items()}
    prefix = "dr.api-marketplace."
    assert names[f"{prefix}user-database.backup.daily-full"] == "User Database · backup daily-full"
    assert names[f"{prefix}user-database.backup.wal-every-4m"] == "User Database · backup wal-every-4m"
    assert names[f"{prefix}user-database.drill.weekly-restore"] == "User Database · drill weekly-restore"
    assert names[f"{prefix}user-database.replication-watch"] == "User Database · replication watch"
    assert names[f"{prefix}user-database.restore"] == "User Database · restore"
    assert names[f"{prefix}api-gateway.backup.config"] == "API Gateway · config backup"
    assert names[f"{prefix}plan.region-failover"] == "Region failover (plan)"
    assert names[f"{prefix}rpo-compliance"] == "API Marketplace · RPO compliance"
    assert names[f"{prefix}retention"] == "API Marketplace · retention"
    # Every DAG of a component is found by searching its name (Airflow matches display names from the start).
    user_database = [i for i in shipped if i.startswith(f"{prefix}user-database.")]
    assert len(user_database) >= 5 and all(names[i].startswith("User Database · ") for i in user_database)
    assert len(set(names.values())) == len(names)  # no two DAGs of a spec look the same


def test_component_and_kind_are_the_first_tags_airflow_shows(shipped: dict[str, DagPlan]) -> None:
    # Airflow sorts tags by name and shows the first three.
    for plan in shipped.values():
        tags = sorted(plan.tags)
        first = tags[: tags.index(f"kind:{plan.kind}") + 1]
        assert all(tag.startswith("component:") for tag in first[:-1]), plan.dag_id  # nothing else before
        if plan.component:
            assert first == [f"component:{plan.component}", f"kind:{plan.kind}"]
    assert "managed-by:drflow" in shipped["dr.api-marketplace.retention"].tags


def test_protection_starts_active_and_plans_and_restores_run_when_triggered(shipped: dict[str, DagPlan]) -> None:
    kinds = {plan.kind for plan in shipped.values()}
    assert PROTECTION_KINDS - {"config-drill"} <= kinds
    for plan in shipped.values():
        # A full-scale exercise runs the real plan: it starts paused (README, "Exercises").
        assert plan.paused is ("type:full-scale" in plan.tags), plan.dag_id
        if plan.kind in ("recovery-plan", "restore"):
            assert plan.schedule is None and plan.schedule_every_s is None and plan.watch is None, plan.dag_id


def _paused(spec_text: str) -> dict[str, bool | None]:
    return {p.dag_id.removeprefix("dr.shop."): p.paused for p in plans(spec_text)}


def test_paused_true_keeps_dags_paused_the_nearest_setting_wins() -> None:
    spec = SHOP.replace(
        "    datastore:",
        "    backups:\n"
        "      - {name: daily, type: full, method: pg_basebackup, schedule: '@daily', targets: [t],"
        " retention: {days: 7}, paused: false}\n"
        "      - {name: weekly, type: full, method: pg_basebackup, schedule: '@weekly', targets: [t],"
        " retention: {days: 7}}\n"
        "    drills: [{name: drill, type: restore, schedule: '@weekly', paused: true}]\n"
        "    paused: true\n"
        "    datastore:",
    ).replace("\ncomponents:\n", "\nstorage: [{name: t, type: local, path: /tmp/x, region: us-east-1}]\ncomponents:\n")
    paused = _paused(spec)
    assert paused["orders.backup.daily"] is False  # the policy's own setting wins over its component's
    assert paused["orders.backup.weekly"] is True and paused["orders.drill.drill"] is True
    assert paused["orders.replication-watch"] is True and paused["orders.restore"] is True
    assert paused["plan.failover"] is False and paused["retention"] is False  # not the component's
    everything = _paused(spec.replace("\ncomponents:\n", "\ndefaults: {paused: true}\ncomponents:\n"))
    assert everything["plan.failover"] is True and everything["retention"] is True
    draft = _paused(SHOP.replace("status: approved", "status: draft"))
    assert draft["plan.failover"] is True  # a draft cannot run: its placeholder stays paused


def _form_fields(plan: DagPlan) -> list[tuple[str, dict[str, Any]]]:
    return list(plan.params.items())


def test_every_form_field_has_a_title_and_a_description_and_optional_ones_accept_null(
    shipped: dict[str, DagPlan],
) -> None:
    forms = [p for p in shipped.values() if p.params]
    assert {p.kind for p in forms} >= {"recovery-plan", "restore", "restore-drill"}
    for plan in forms:
        for name, field in _form_fields(plan):
            assert field.get("title") and field.get("description"), (plan.dag_id, name)
            if "default" in field and field["default"] is None:
                # Airflow's form requires any field whose type does not admit null, empty or not.
                assert isinstance(field["type"], list) and "null" in field["type"], (plan.dag_id, name)
            elif "default" not in field:
                assert (plan.kind, name) == ("recovery-plan", "reason")  # the one thing a person must give


def test_the_plan_form_needs_only_a_reason_and_shows_no_null(shipped: dict[str, DagPlan]) -> None:
    form = shipped["dr.api-marketplace.plan.region-failover"].params
    required = [name for name, field in form.items() if "null" not in field["type"] and "default" not in field]
    assert required == ["reason"]
    assert form["notes"]["default"] is None and form["notes"]["format"] == "multiline"
    assert form["target_region"]["enum"][0] is None
    assert form["target_region"]["values_display"] == {"null": "Plan default (us-west-2)"}
    assert form["target_time"]["format"] == form["incident_started_at"]["format"] == "date-time"


def test_without_a_display_name_the_spec_and_component_names_are_shown() -> None:
    text = SHOP.replace(
        "\ncomponents:\n", "\nstorage: [{name: t, type: local, path: /tmp/x, region: us-east-1}]\ncomponents:\n"
    )
    assert load_spec_text(text, Path("shop.yaml")).spec.metadata.display_name is None
    names = {p.kind: p.display_name for p in plans(text)}
    assert names["recovery-plan"] == "Failover (plan)"
    assert names["replication-watch"] == "orders · replication watch"
