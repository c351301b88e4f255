"""Text for people outside the company (a status page): which facts it may name, rendering, the leak guard.

A status-page template names only public facts of a run (:data:`PLACEHOLDERS`); anything typed into the
trigger form (the reason), run ids, hosts or internal component names never reach it. The spec check
refuses other placeholders and templates that mention an internal component; the notifier renders with
:func:`render` and runs :func:`internal_mentions` again on the rendered text before it sends.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drflow.units import human_duration

PLACEHOLDERS: dict[str, str] = {
    "service": "the service's display name (metadata.display_name, else its name)",
    "components": "the affected components customers know (display names of those not marked internal)",
    "started_at": "when the run started, HH:MM UTC",
    "expected_resolution": "the run's start plus the plan's RTO, HH:MM UTC",
    "elapsed": "how long the run has been going, e.g. 12m",
}
INTERNAL_HINTS: dict[str, str] = {
    "reason": "is internal (typed by ops in the trigger form)",
    "notes": "is internal (typed by ops in the trigger form)",
    "run_id": "is internal (Airflow's run id)",
    "dag_id": "is internal (Airflow's DAG id)",
}
TEMPLATE_NAMES = ("incident", "update", "resolution", "postmortem")


class TemplateError(ValueError):
    """A template names something that is not a public fact, or is not a valid template."""


def placeholders(template: str) -> list[str]:
    """The placeholder names of a template (``{components}`` → ``components``); malformed text raises."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise TemplateError(
            f"the template is malformed ({exc}); write placeholders as {{name}} and a literal brace as {{{{ or }}}}"
        ) from None
    return fields


def template_problems(template: str) -> list[str]:
    """What makes a template unfit for a public channel: each problem says what to write instead."""
    try:
        fields = placeholders(template)
    except TemplateError as exc:
        return [str(exc)]
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    problems = []
    for field in dict.fromkeys(fields):
        if field in PLACEHOLDERS:
            continue
        why = INTERNAL_HINTS.get(field, "is not a public fact") if field else "is empty"
        problems.append(f"placeholder {{{field}}} {why}; use one of {allowed}")
    return problems


def internal_mentions(text: str, internal_names: Iterable[str]) -> list[str]:
    """The internal names (component names or display names) the text mentions, case-insensitively."""
    lowered = text.lower()
    found = []
    for name in dict.fromkeys(internal_names):
        if name and re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lowered):
            found.append(name)
    return found


@dataclass(frozen=True)
class PublicFacts:
    """What a status-page template may say about a run."""

    service: str
    components: Sequence[str]
    started_at: datetime
    rto_s: int
    now: datetime

    def values(self) -> dict[str, str]:
        return {
            "service": self.service,
            "components": ", ".join(self.components) or self.service,
            "started_at": clock(self.started_at),
            "expected_resolution": clock(self.started_at + timedelta(seconds=self.rto_s)),
            "elapsed": human_duration(max(0, int((self.now - self.started_at).total_seconds()))),
        }


def clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def render(template: str, facts: PublicFacts, internal_names: Iterable[str] = ()) -> str:
    """The template with the run's public facts; refuses (TemplateError) text that would leak internals."""
    problems = template_problems(template)
    if problems:
        raise TemplateError("; ".join(problems))
    text = template.format_map(facts.values())
    leaked = internal_mentions(text, internal_names)
    if leaked:
        raise TemplateError(
            f"the rendered text names internal component {', '.join(repr(n) for n in leaked)}; "
            "remove it from the template, or do not mark the component internal"
        )
    return text


def public_components(components: Sequence[tuple[str, bool]], service: str) -> list[str]:
    """Display names of the affected components that are not internal; the service's name when all are."""
    names = [title for title, internal in components if not internal]
    return names or [service]


def template_mapping(templates: Mapping[str, str | None] | None) -> dict[str, str]:
    """The templates a channel defines (name → text), without the absent ones."""
    return {name: text for name, text in (templates or {}).items() if name in TEMPLATE_NAMES and text}
