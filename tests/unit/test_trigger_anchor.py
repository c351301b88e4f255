"""Who triggered a plan run is found in the event log next to the trigger, also after a clear moved queued_at."""

from __future__ import annotations

from typing import Any

from drflow.audit.gather import _trigger_events


class EventLogAsked:
    """Answers the event-log query with no events and keeps the window it was asked for."""

    def __init__(self) -> None:
        self.windows: list[tuple[str, str]] = []

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        assert path == "/api/v2/eventLogs" and params is not None
        self.windows.append((params["after"], params["before"]))
        return {"event_logs": [], "total_entries": 0}


def test_the_trigger_is_looked_for_before_queued_at_of_a_fresh_run() -> None:
    api = EventLogAsked()
    _trigger_events(api, "dr.s.plan.p", {"run_after": "2026-12-01T08:00:00Z", "queued_at": "2026-12-01T08:00:01Z"})
    assert api.windows == [("2026-12-01T07:55:01+00:00", "2026-12-01T08:00:06+00:00")]


def test_after_a_clear_the_trigger_is_looked_for_before_run_after() -> None:
    """A step cleared an hour later moved queued_at to the clear: the trigger is still at run_after."""
    api = EventLogAsked()
    cleared = {"run_after": "2026-12-01T08:00:00Z", "queued_at": "2026-12-01T09:00:00Z"}
    _trigger_events(api, "dr.s.plan.p", cleared)
    assert api.windows == [("2026-12-01T07:55:00+00:00", "2026-12-01T08:00:05+00:00")]
