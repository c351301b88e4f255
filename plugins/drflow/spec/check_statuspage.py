"""Checks of statuspage channels: templates name public facts only, and nothing internal reaches them.

A status page speaks to customers, so its templates may use only the public placeholders and may not
name a component marked `internal: true`; notify steps send a statuspage channel one of its templates
(never free text); escalation levels, which carry internal messages, may not name one.
"""

from __future__ import annotations

from typing import Any

from drflow.public_text import TEMPLATE_NAMES, internal_mentions, template_problems
from drflow.spec.check_helpers import items as _items
from drflow.spec.diagnostics import Diagnostic, quoted
from drflow.spec.source import Loc, Source


def check_statuspage(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    channels = {
        str(channel.get("name")): (index, channel)
        for index, channel in _items(data, "notifications")
        if isinstance(channel.get("name"), str)
    }
    pages = {name: found for name, found in channels.items() if found[1].get("type") == "statuspage"}
    if not pages:
        return []
    internal = _internal_names(data)
    found: list[Diagnostic] = []
    for name, (index, channel) in pages.items():
        templates = channel.get("templates")
        for template in TEMPLATE_NAMES:
            text = templates.get(template) if isinstance(templates, dict) else None
            if isinstance(text, str):
                found += _check_template(source, ("notifications", index, "templates", template), name, text, internal)
    for plan_index, plan in _items(data, "recovery_plans"):
        for step_index, step in _items(plan, "steps"):
            if step.get("action") == "notify":
                found += _check_notify_step(source, ("recovery_plans", plan_index, "steps", step_index), step, pages)
    for level_index, level in _items(data, "escalation"):
        for ref_index, ref in enumerate(_list(level.get("channels"))):
            if ref in pages:
                found.append(
                    source.diagnostic(
                        ("escalation", level_index, "channels", ref_index),
                        f"escalation level '{level.get('name')}' tells statuspage channel '{ref}': escalation "
                        "messages name people and internal steps, which customers must not read",
                        "name the operations team's channels here (slack, smtp, webhook)",
                    )
                )
    return found


def _check_template(source: Source, loc: Loc, channel: str, text: str, internal: list[str]) -> list[Diagnostic]:
    what = f"template {loc[-1]} of statuspage channel '{channel}'"
    found = []
    for problem in template_problems(text):
        what_wrong, _, instead = problem.partition("; ")
        found.append(source.diagnostic(loc, f"{what}: {what_wrong}", instead))
    for name in internal_mentions(text, internal):
        found.append(
            source.diagnostic(
                loc,
                f"{what} names '{name}', a component marked internal: customers must not read it",
                "write {components} (the affected components customers know) or the service's name instead",
            )
        )
    return found


def _check_notify_step(
    source: Source, loc: Loc, step: dict[str, Any], pages: dict[str, tuple[int, dict[str, Any]]]
) -> list[Diagnostic]:
    names = [ref for ref in _list(step.get("channels")) if isinstance(ref, str)]
    on_pages = [ref for ref in names if ref in pages]
    others = [ref for ref in names if ref not in pages]
    template, name = step.get("template"), step.get("name")
    found = []
    if on_pages and template is None:
        found.append(
            source.diagnostic(
                (*loc, "channels"),
                f"step '{name}' sends to statuspage channel {quoted(on_pages)} without a template: free text "
                "could tell customers internal details",
                f"add template: (one of {', '.join(TEMPLATE_NAMES)}); message: goes to the other channels only",
            )
        )
    if others and step.get("message") is None and template is not None:  # neither: the model says so
        found.append(
            source.diagnostic(
                (*loc, "channels"),
                f"step '{name}' has no message: for channel {quoted(others)}, which does not use templates",
                "add message: (the text for chat, e-mail and webhook channels)",
            )
        )
    if isinstance(template, str) and template in TEMPLATE_NAMES:
        for ref in on_pages:
            templates = pages[ref][1].get("templates")
            if isinstance(templates, dict) and not templates.get(template):
                found.append(
                    source.diagnostic(
                        (*loc, "template"),
                        f"step '{name}' sends template {template}, which statuspage channel '{ref}' does not define",
                        f"add templates.{template} to channel '{ref}', or choose a template it has",
                    )
                )
    return found


def _internal_names(data: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for _, component in _items(data, "components"):
        if component.get("internal") is True:
            names += [str(v) for v in (component.get("name"), component.get("display_name")) if isinstance(v, str)]
    return names


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
