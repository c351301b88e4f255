"""Statuspage channels in the spec: public placeholders only, no internal names, the fields a page needs,
notify steps that send templates; and rendering: internal components never appear."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drflow.contracts import PlanFacts, StepDefinition
from drflow.hosts import LocalHost
from drflow.plan.recovery import plan_facts
from drflow.public_text import PublicFacts, TemplateError, public_components, render, template_problems
from drflow.spec.diagnostics import Diagnostic
from tests.unit.recovery_spec import diagnostics, load

SPEC = """\
version: 1
metadata: {{name: shop, owner: team, display_name: Shop}}
regions:
  - {{name: us-east-1, role: primary}}
notifications:
  - name: page
    type: statuspage
    conn_id: sp_api
    page_id: abc123
{channel}  - {{name: ops, type: webhook, conn_id: ops_hook}}
components:
  - {{name: web, display_name: Web Shop, criticality: low, rto: 1h, rpo: 1d}}
  - {{name: orders-db, display_name: Orders DB, internal: true, criticality: low, rto: 30m, rpo: 1d}}
recovery_plans:
  - name: p
    scenario: human-error
    status: approved
    components: {components}
    approval: {{approvers: [alice, bob]}}
    notify: [page]
    steps:
      - {step}
"""
TEMPLATES = """\
    templates:
      incident: "Disruption of {components}; expected by {expected_resolution}."
      resolution: "{components} work again ({elapsed})."
"""
STEP = "{name: tell, action: notify, channels: [page], template: incident}"


def spec(channel: str = TEMPLATES, step: str = STEP, components: str = "[web, orders-db]") -> str:
    return SPEC.format(channel=channel, step=step, components=components)


def errors(text: str, tmp_path: Path) -> list[Diagnostic]:
    return [d for d in diagnostics(text, tmp_path) if d.severity == "error"]


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_example_spec_is_valid_and_its_facts_are_public(tmp_path: Path) -> None:
    text = spec()
    assert errors(text, tmp_path) == []
    loaded = load(text, tmp_path).spec
    facts = plan_facts(loaded, loaded.recovery_plans[0])
    assert facts.service == "Shop" and facts.public_components == ("Web Shop",)
    assert facts.internal_names == ("orders-db", "Orders DB")
    page = facts.notifications["page"]
    assert page.page_id == "abc123" and page.events == ("activation", "completion")  # the statuspage default
    assert page.templates is not None and page.templates.update is None
    assert page.to_params()["templates"]["incident"].startswith("Disruption of {components}")


@pytest.mark.parametrize(
    ("placeholder", "why"),
    [
        ("{reason}", "placeholder {reason} is internal (typed by ops in the trigger form)"),
        ("{run_id}", "placeholder {run_id} is internal (Airflow's run id)"),
        ("{host}", "placeholder {host} is not a public fact"),
        ("{components.0}", "placeholder {components.0} is not a public fact"),
        ("{", "the template is malformed"),
    ],
)
def test_a_placeholder_that_is_not_a_public_fact_is_refused_at_the_template(
    tmp_path: Path, placeholder: str, why: str
) -> None:
    text = spec(TEMPLATES.replace("work again ({elapsed})", f"work again ({placeholder})"))
    [error] = errors(text, tmp_path)
    assert (error.line, error.col) == (line_of(text, "resolution:"), 19)
    assert error.path == "notifications[page].templates.resolution"
    assert why in error.message and "template resolution of statuspage channel 'page'" in error.message
    if "malformed" not in why:
        assert "use one of {service}, {components}, {started_at}, {expected_resolution}, {elapsed}" in error.hint


@pytest.mark.parametrize("name", ["orders-db", "ORDERS db"])
def test_a_template_naming_an_internal_component_is_refused(tmp_path: Path, name: str) -> None:
    text = spec(TEMPLATES.replace("Disruption of {components}", f"Disruption of {name}"))
    [error] = errors(text, tmp_path)
    assert error.line == line_of(text, "incident:") and "a component marked internal" in error.message
    assert "write {components}" in error.hint


def test_a_statuspage_channel_needs_its_page_and_templates_and_hears_only_public_events(tmp_path: Path) -> None:
    [missing] = errors(spec(channel=""), tmp_path)
    assert "statuspage channel 'page' has no templates" in missing.message
    assert missing.hint == "add templates: (at least incident and resolution)"
    with_events = spec(TEMPLATES + "    events: [activation, step-failed]\n")
    [events] = errors(with_events, tmp_path)
    assert "subscribes to step-failed" in events.message and "list only activation and completion" in events.hint
    assert events.line == line_of(with_events, "events:")  # at the list, not the channel's first line
    webhook = spec().replace(
        "{name: ops, type: webhook, conn_id: ops_hook}", "{name: ops, type: webhook, conn_id: h, page_id: x}"
    )
    [refused] = errors(webhook, tmp_path)
    assert "channel 'ops' (webhook) sets page_id, which only a statuspage channel reads" in refused.message


def test_notify_steps_send_a_statuspage_channel_a_template_never_free_text(tmp_path: Path) -> None:
    free = spec(step="{name: tell, action: notify, channels: [page, ops], message: Orders DB lost its disk}")
    [error] = errors(free, tmp_path)
    assert "sends to statuspage channel 'page' without a template" in error.message
    mixed = spec(step="{name: tell, action: notify, channels: [page, ops], template: incident}")
    [error] = errors(mixed, tmp_path)
    assert "has no message: for channel 'ops'" in error.message
    absent = spec(step="{name: tell, action: notify, channels: [page], template: postmortem}")
    [error] = errors(absent, tmp_path)
    assert error.path.endswith("steps[tell].template") and "does not define" in error.message
    both = spec(step="{name: tell, action: notify, channels: [page, ops], template: incident, message: hi}")
    assert errors(both, tmp_path) == []


def test_escalation_never_reaches_a_status_page(tmp_path: Path) -> None:
    text = spec() + "escalation:\n  - {name: ic, people: [carol], channels: [page], after: 1m}\n"
    [error] = errors(text, tmp_path)
    assert error.path == "escalation[ic].channels[0]" and "customers must not read" in error.message


def test_components_render_as_the_public_ones_or_the_service_when_all_are_internal(tmp_path: Path) -> None:
    assert public_components([("Web Shop", False), ("Orders DB", True)], "Shop") == ["Web Shop"]
    assert public_components([("Orders DB", True)], "Shop") == ["Shop"]
    loaded = load(spec(components="[orders-db]"), tmp_path).spec
    facts = plan_facts(loaded, loaded.recovery_plans[0])
    assert facts.public_components == ("Shop",)
    started = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
    public = PublicFacts(facts.service, facts.public_components, started, facts.rto_s, started + timedelta(minutes=7))
    text = render("Disruption of {components} since {started_at}; by {expected_resolution} ({elapsed})", public)
    assert text == "Disruption of Shop since 23:50 UTC; by 00:20 UTC (7m)"


def test_rendering_refuses_text_that_names_an_internal_component() -> None:
    started = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    public = PublicFacts("Orders DB", ["Orders DB"], started, 600, started)
    with pytest.raises(TemplateError, match="names internal component 'Orders DB'"):
        render("{service} is down", public, ["orders-db", "Orders DB"])
    with pytest.raises(TemplateError, match="placeholder {reason} is internal"):
        render("{reason}", public)
    assert template_problems("{{literal}} {service}") == []


def test_the_walkthrough_checks_the_connection_and_that_the_templates_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drflow.connections import read_without_airflow
    from drflow.exercises.people import channels_ready

    loaded = load(spec(), tmp_path).spec
    facts = plan_facts(loaded, loaded.recovery_plans[0])
    read_without_airflow()
    try:
        assert "AIRFLOW_CONN_SP_API" in channels_ready(facts, ["page"])["detail"]
        monkeypatch.setenv("AIRFLOW_CONN_SP_API", '{"conn_type": "http", "host": "https://api.statuspage.io"}')
        assert channels_ready(facts, ["page"]) == {
            "ok": True,
            "detail": "channels configured: page (statuspage, connection sp_api, 2 templates render)",
        }
        leaking = replace(facts, service="Orders DB", public_components=("Orders DB",))
        found = channels_ready(leaking, ["page"])
        assert (
            not found["ok"]
            and "template incident would not be sent: the rendered text names internal" in (found["detail"])
        )
    finally:
        read_without_airflow(False)


def test_the_simulation_shows_what_the_status_page_would_read(tmp_path: Path) -> None:
    from drflow.jobs.simulation_copies import Copies
    from drflow.jobs.simulation_steps import StepSimulator
    from tests.plan_inputs import recovery_dag

    dag = recovery_dag(spec(), "p")
    task = dag.task("tell")
    simulator = StepSimulator(PlanFacts.from_params(task.params["plan"]), Copies(tmp_path, "shop", LocalHost()))
    said = simulator.run(StepDefinition.from_params(task.params["step"]))
    assert said.startswith("would notify page (incident): 'Disruption of Web Shop; expected by ")
    assert said.endswith(": not sent")
