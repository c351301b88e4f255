"""Documentation currency of a spec and its recovery plans: what is current, stale or never reviewed.

Validation warns about every stale document at its ``reviewed`` line (see :mod:`drflow.spec.currency`
for the notation); the compliance report lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from drflow.spec.currency import due_date
from drflow.spec.diagnostics import Diagnostic
from drflow.spec.model import Spec
from drflow.spec.source import Loc, Source


@dataclass(frozen=True)
class Review:
    """One reviewed document (the spec, or a plan) and its currency on a given day."""

    document: str
    """``spec`` or ``plan <name>``."""
    owner: str
    reviewed: date | None
    review_every: str
    inherited: bool
    """The plan states no date: the spec's review covers it."""
    due: date | None
    state: str
    """``current``, ``stale`` (due before today) or ``never reviewed``."""

    def to_json(self) -> dict[str, object]:
        return {
            "document": self.document,
            "owner": self.owner,
            "reviewed": self.reviewed.isoformat() if self.reviewed else None,
            "review_every": self.review_every,
            "inherited": self.inherited,
            "due": self.due.isoformat() if self.due else None,
            "state": self.state,
        }


def reviews(spec: Spec, today: date) -> list[Review]:
    """The spec's currency, then every recovery plan's (a plan without its own date takes the spec's)."""
    meta = spec.metadata
    found = [_review("spec", meta.owner, meta.reviewed, meta.review_every, False, today)]
    for plan in spec.recovery_plans:
        reviewed = plan.reviewed or meta.reviewed
        every = plan.review_every or meta.review_every
        owner = plan.owner or meta.owner
        found.append(_review(f"plan {plan.name}", owner, reviewed, every, plan.reviewed is None, today))
    return found


def _review(document: str, owner: str, reviewed: date | None, every: str, inherited: bool, today: date) -> Review:
    due = due_date(reviewed, every) if reviewed else None
    state = "never reviewed" if due is None else "stale" if due < today else "current"
    return Review(document, owner, reviewed, every, inherited, due, state)


def check_currency(spec: Spec, source: Source, today: date) -> list[Diagnostic]:
    """A warning at the ``reviewed`` line of each stale document; an error for a review dated in the future."""
    found: list[Diagnostic] = []
    plan_index = {plan.name: index for index, plan in enumerate(spec.recovery_plans)}
    all_reviews = reviews(spec, today)
    inheriting = [r.document.removeprefix("plan ") for r in all_reviews[1:] if r.inherited]
    for review in all_reviews:
        if review.reviewed is None or review.inherited:
            continue
        loc: Loc = (
            ("metadata", "reviewed")
            if review.document == "spec"
            else ("recovery_plans", plan_index[review.document.removeprefix("plan ")], "reviewed")
        )
        if review.reviewed > today + timedelta(days=1):
            message = f"{review.document} says it was reviewed on {review.reviewed}, which is in the future"
            found.append(source.diagnostic(loc, message, f"write the day of the last review (today is {today})"))
            continue
        if review.state != "stale":
            continue
        covers = ""
        if loc[0] == "metadata" and inheriting:
            covers = f" (it covers {_listed(inheriting)}, which state no date of their own)"
        message = (
            f"{review.document} was last reviewed on {review.reviewed} and was due again on {review.due} "
            f"(every {review.review_every}){covers}: it may no longer match the systems it describes"
        )
        hint = f"have its owner '{review.owner}' review it, then set reviewed: to the day of that review"
        found.append(source.diagnostic(loc, message, hint, severity="warning"))
    return found


def _listed(plans: Sequence[str]) -> str:
    return ", ".join(f"plan {name}" for name in plans)
