"""Mistakes a reviewer makes editing the example spec: one message each, at the line to fix, saying the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.spec.diagnostics import Diagnostic, SpecError
from drflow.spec.load import load_spec_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (PROJECT_ROOT / "plan_specs" / "api-marketplace.yaml").read_text()


def _errors(text: str, tmp_path: Path) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, tmp_path / "api-marketplace.yaml")
    return caught.value.errors


def _edit(old: str, new: str) -> tuple[str, int]:
    """The example spec with its first `old` replaced, and the line the edit starts on."""
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new, 1), EXAMPLE[: EXAMPLE.index(old)].count("\n") + 1


# (old, new, lines after the edit's first line where the error must be, words of the message, words of the hint)
MISTAKES = {
    "misspelt required key": (
        "    criticality: critical\n",
        "    criticallity: critical\n",
        0,
        "unknown key 'criticallity'",
        "did you mean 'criticality' (required, and missing)?",
    ),
    "misspelt schedule": (
        '        schedule: "0 2 * * *"\n',
        '        schedul: "0 2 * * *"\n',
        0,
        "unknown key 'schedul'",
        "did you mean 'schedule' (required, and missing)?",
    ),
    "duration in words": ("    rto: 30m\n", "    rto: 30 minutes\n", 0, "'30 minutes' is not a duration", "5m"),
    "approval timeout in words": ("      timeout: 15m\n", "      timeout: 15 minutes\n", 0, "not a duration", "5m"),
    "unknown channel": (
        "    notify: [oncall-slack, status-page]\n",
        "    notify: [oncall-slak, status-page]\n",
        0,
        "'oncall-slak', which is not defined",
        "did you mean 'oncall-slack'?",
    ),
    "internal placeholder on the status page": (
        "We have identified the cause and are restoring",
        "We have identified the cause ({reason}) and are restoring",
        -1,  # the template's value starts on the line of `update: >-`
        "{reason} is internal",
        "{components}",
    ),
    "step on an unknown component": (
        "        action: gate_lag\n        component: user-database\n",
        "        action: gate_lag\n        component: user-db\n",
        1,
        "'user-db', which the spec does not declare",
        "did you mean 'user-database'?",
    ),
    "tab indentation": ("    rto: 30m\n", "\trto: 30m\n", 0, "tab", "indent with spaces"),
    "duplicate key": ("    rto: 30m\n", "    rto: 30m\n    rto: 15m\n", 1, "duplicate key 'rto'", "remove one"),
    "unknown action": ("        action: fence\n", "        action: fense\n", 0, "'fense'", "did you mean 'fence'?"),
    "bad cron": ('schedule: "0 2 * * *"', 'schedule: "0 25 * * *"', 0, "not a valid cron", "'0 2 * * *'"),
    "scenario": (
        "    scenario: infrastructure-failure\n",
        "    scenario: infra-failure\n",
        0,
        "'infra-failure'",
        "did you mean 'infrastructure-failure'?",
    ),
    "region": ("        region: us-east-1\n", "        region: us-east1\n", 0, "'us-east1'", "mean 'us-east-1'?"),
    "unknown step in depends_on": (
        "        type: manual\n        assignees: [oncall]\n",
        "        type: manual\n        depends_on: [switch-dsn]\n        assignees: [oncall]\n",
        1,
        "'switch-dsn', which is not in plan",
        "did you mean 'switch-dns'?",
    ),
    "review date": ("reviewed: 2026-11-16", "reviewed: 2026-13-01", 0, "not a date", "YYYY-MM-DD"),
    # The fixes of this change: each was a second message, the wrong line, or no suggestion.
    "undefined backup target": (
        "targets: [s3-primary, s3-secondary]",
        "targets: [s3-primary, s3-secundary]",
        0,
        "'s3-secundary', which is not defined",
        "did you mean 's3-secondary'?",
    ),
    "misspelt method": (
        "method: pg_basebackup",
        "method: pg_basebackups",
        0,
        "'pg_basebackups'",
        "did you mean 'pg_basebackup'?",
    ),
    "missing colon": ("    rto: 30m\n", "    rto 30m\n", 0, "no ':' after its key", "write it as 'rto: 30m'"),
    "over-indented line": ("    rto: 30m\n", "     rto: 30m\n", 0, "YAML syntax error", "indent it 4 spaces"),
    "short form of a choice": ("mode: synchronous", "mode: sync", 0, "'sync'", "did you mean 'synchronous'?"),
    "step depending on itself": (
        "        type: manual\n        assignees: [oncall]\n",
        "        type: manual\n        depends_on: [tell-customers]\n        assignees: [oncall]\n",
        1,
        "depends on itself",
        "remove it from depends_on",
    ),
    "plan status typo": ("    status: approved\n", "    status: aproved\n", 0, "'aproved'", "did you mean 'approved'?"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_gets_one_message_at_its_line_saying_the_fix(tmp_path: Path, mistake: str) -> None:
    old, new, offset, message, hint = MISTAKES[mistake]
    text, line = _edit(old, new)
    errors = _errors(text, tmp_path)
    assert len(errors) == 1, "\n".join(map(str, errors))
    assert errors[0].line == line + offset, str(errors[0])
    assert message in errors[0].message, str(errors[0])
    assert hint in errors[0].hint, str(errors[0])


def test_a_misspelt_required_key_is_not_also_reported_missing(tmp_path: Path) -> None:
    text, line = _edit("    rpo: 5m\n", "    rop: 5m\n")
    (error,) = _errors(text, tmp_path)
    assert (error.line, error.col) == (line, 5)
    assert "did you mean 'rpo' (required, and missing)?" in error.hint and "missing" not in error.message


def test_a_misspelt_optional_key_beside_a_missing_required_one_keeps_both(tmp_path: Path) -> None:
    text, _ = _edit("    rpo: 5m\n", "    paused_: true\n")  # nothing like 'rpo': rpo really is missing
    messages = sorted(error.message for error in _errors(text, tmp_path))
    assert any("missing the required key 'rpo'" in m for m in messages), messages
    assert any("unknown key 'paused_'" in m for m in messages), messages


def test_unknown_key_lists_keys_as_the_spec_writes_them(tmp_path: Path) -> None:
    text, _ = _edit('        schedule: "0 2 * * *"\n', '        schedule: "0 2 * * *"\n        form: replica-1\n')
    (error,) = _errors(text, tmp_path)
    assert "did you mean 'from'?" in error.hint and "from_node" not in error.hint, str(error)


def test_a_document_that_is_a_list_says_the_spec_must_be_a_mapping(tmp_path: Path) -> None:
    (error,) = _errors("- name: analytics\n  criticality: high\n", tmp_path)
    assert (error.line, error.col) == (1, 1)
    assert error.message.startswith("the spec must be a mapping") and "'value'" not in error.message
    assert "version: 1" in error.hint


def test_a_colon_inside_text_still_says_to_quote_it(tmp_path: Path) -> None:
    old = "description: Invoices and payments; kept for audits."
    text, line = _edit(old, "description: Invoices: payments; kept for audits.")
    (error,) = _errors(text, tmp_path)
    assert error.line == line and "in quotes" in error.hint, str(error)


def test_a_wrong_list_item_is_named_without_nested_quotes(tmp_path: Path) -> None:
    page = "    page_id: kctbh9vrtdwd\n"
    text, line = _edit(page, page + "    events: [activation, step_failed]\n")
    (error,) = _errors(text, tmp_path)
    assert error.line == line + 1, str(error)
    assert error.message == "each 'events' entry cannot be 'step_failed'", str(error)
    assert "did you mean 'step-failed'?" in error.hint


def test_an_s3_target_without_its_region_is_one_error_not_one_per_component_using_it(tmp_path: Path) -> None:
    text, _ = _edit("    conn_id: drflow_s3\n    region: us-west-2\n", "    conn_id: drflow_s3\n")
    (error,) = _errors(text, tmp_path)
    assert "missing the required key 'region'" in error.message and error.path == "storage[s3-secondary].region"
