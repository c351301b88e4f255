"""Status updates while a plan run is active: a task beside the steps that reports every ``status_every``.

The task starts with the run and defers (the triggerer waits, no worker slot is held). It wakes at most every
``CHECK_S`` seconds, so that it ends soon after the run's other tasks, and sends an update to the plan's
channels once ``status_every`` has passed since the last one (never more often than ``MIN_WAIT_S``): steps
done, the current steps and whom they wait on, elapsed time against the RTO, and the expected completion from
the remaining steps' median durations in earlier successful runs (Airflow's REST API, the record's
connection). A status update never fails the run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator

from drflow.contracts import PlanFacts
from drflow.notifiers.messages import run_started_at

CHECK_S = 15
MIN_WAIT_S = 10
"""A shorter wait can fire before the scheduler has seen the deferring worker exit, and Airflow then fails the task."""
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
WAITING = frozenset({"awaiting_input"})


def status_text(
    plan: PlanFacts,
    elapsed_s: float,
    states: Mapping[str, str | None],
    waiting_on: Mapping[str, Sequence[str]],
    history_s: Mapping[str, float],
) -> str:
    """The update's text, from the run's task states (task id → state, in plan order) and past durations."""
    from drflow.units import human_duration

    done = [task for task, state in states.items() if state == "success"]
    remaining = [task for task, state in states.items() if state not in FINISHED]
    current = [task for task, state in states.items() if state in {"running", "deferred", "queued", *WAITING}]
    percent = round(100 * elapsed_s / plan.rto_s) if plan.rto_s else 0
    lines = [
        f"Status of plan '{plan.plan}': {human_duration(int(elapsed_s))} elapsed of its RTO "
        f"{human_duration(plan.rto_s)} ({percent}%).",
        f"Done: {', '.join(done) or 'nothing yet'} ({len(done)} of {len(states)} steps).",
    ]
    if current:
        now = [f"{t} (waiting on {', '.join(waiting_on[t])})" if waiting_on.get(t) else t for t in current]
        lines.append(f"Now: {'; '.join(now)}.")
    unknown = [task for task in remaining if task not in history_s]
    if not remaining:
        lines.append("Every step has finished.")
    elif unknown:
        lines.append(f"Expected completion: unknown (no earlier successful run of {', '.join(unknown)}).")
    else:
        left = sum(history_s[task] for task in remaining)
        lines.append(
            f"Expected completion: in about {human_duration(int(left))}, at {human_duration(int(elapsed_s + left))} of "
            f"{human_duration(plan.rto_s)} (the remaining steps' median durations in earlier runs, one after another)."
        )
    return "\n".join(lines)


class StatusWatchOperator(BaseOperator):
    """Send a status update to the plan's channels every ``every_s`` seconds until the run's steps have finished."""

    template_fields: Sequence[str] = ()
    ui_color = "#d6eaf8"

    def __init__(self, *, every_s: int, plan: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every_s = every_s
        self.plan = dict(plan)

    def execute(self, context: Any) -> None:
        self.wait(time.time())

    def wait(self, last_sent: float) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        due_in = max(MIN_WAIT_S, last_sent + self.every_s - time.time())
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=min(CHECK_S, due_in))),
            method_name="tick",
            kwargs={"last_sent": last_sent},
        )

    def tick(self, context: Any, event: Any = None, last_sent: float = 0.0) -> int | None:
        facts = PlanFacts.from_params(self.plan)
        try:
            states, waiting_on, history_s = self.read_run(context, facts)
        except Exception as exc:  # the API may be down for a moment; the run goes on
            self.log.warning("could not read the run's state for a status update: %s", exc)
            states, waiting_on, history_s = None, {}, {}
        if states is not None and all(state in FINISHED for state in states.values()):
            self.log.info("the run's steps have finished: no more status updates")
            return None
        if states is not None and time.time() >= last_sent + self.every_s:
            started = run_started_at(context["dag_run"]) or datetime.now(UTC)
            elapsed_s = (datetime.now(UTC) - started).total_seconds()
            self.send(context, facts, status_text(facts, elapsed_s, states, waiting_on, history_s))
            last_sent = time.time()
        self.wait(last_sent)
        return None

    def read_run(
        self, context: Any, facts: PlanFacts
    ) -> tuple[dict[str, str | None], dict[str, list[str]], dict[str, float]]:
        from drflow.audit.api import AirflowApi, get_all, q

        api = AirflowApi.from_connection(facts.audit_conn_id)
        dag_id, run_id = context["dag_run"].dag_id, context["dag_run"].run_id
        runs = f"/api/v2/dags/{q(dag_id)}/dagRuns"
        ours = {self.task_id, "record"}
        tis = get_all(api, f"{runs}/{q(run_id)}/taskInstances", "task_instances")
        states = {ti["task_id"]: ti.get("state") for ti in tis if ti["task_id"] not in ours}
        waiting_on: dict[str, list[str]] = {}
        for task, state in states.items():
            if state in WAITING:
                detail = api.get(f"{runs}/{q(run_id)}/taskInstances/{q(task)}/-1/hitlDetails")
                waiting_on[task] = [str(u.get("name") or u.get("id")) for u in detail.get("assigned_users") or []]
        past: dict[str, list[float]] = {}
        for ti in get_all(api, f"{runs}/~/taskInstances", "task_instances", {"state": "success"}):
            if ti.get("dag_run_id") != run_id and ti["task_id"] in states and ti.get("duration") is not None:
                past.setdefault(ti["task_id"], []).append(float(ti["duration"]))
        return states, waiting_on, {task: statistics.median(durations) for task, durations in past.items()}

    def send(self, context: Any, facts: PlanFacts, text: str) -> None:
        from drflow.notifiers import channel_notifier

        for name in facts.notify:
            channel = facts.notifications.get(name)
            if channel is None:
                continue
            try:
                channel_notifier(name, channel.to_params(), "status", self.plan, message=text).notify(context)
            except Exception as exc:  # a status update never blocks a recovery
                self.log.warning("status update could not be sent on channel %s: %s", name, exc)
