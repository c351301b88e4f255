"""The `notify` step of recovery plans: send the step's message to the channels it names."""

from __future__ import annotations

from typing import Any

from drflow.operators.step_base import PlanStepOperator, refuse
from drflow.spec.plans import NotifyAction


class NotifyOperator(PlanStepOperator):
    """Send the step's ``message`` (with the run's plan, reason and link) to its ``channels``; a statuspage
    channel gets the step's ``template`` instead, rendered with public facts only.

    A notification never blocks a recovery: a channel that cannot be reached is logged, reported on the
    plan's other channels and kept for the recovery record (XCom ``drflow_notification_failures``), and
    the step succeeds with ``sent`` and ``failed`` in its result. Only a channel the spec does not define
    is refused (``drflow validate`` reports it first).
    """

    ui_color = "#f9e79f"
    step_model = NotifyAction

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.notifiers import StatuspageNotifier, channel_notifier
        from drflow.notifiers.base import remember_failures, report_elsewhere

        step = self.definition.spec_step(NotifyAction)
        channels = self.facts.notifications
        names = list(step.channels)
        unknown = [name for name in names if name not in channels]
        if unknown:
            refuse(
                f"step {step.name} names notification channels {', '.join(unknown)} that the spec does not define",
                f"add them under notifications: in the spec, or fix the step's channels "
                f"(defined: {', '.join(channels) or 'none'})",
            )
        sent: list[str] = []
        failed: dict[str, str] = {}
        incidents: list[dict[str, Any]] = []
        for name in names:
            notifier = channel_notifier(
                name, channels[name].to_params(), "message", self.plan, message=step.message, template=step.template
            )
            try:
                notifier.notify(context)
                sent.append(name)
                if isinstance(notifier, StatuspageNotifier) and notifier.result:
                    incidents.append(notifier.result)
            except Exception as exc:  # a channel never stops the plan
                self.log.error("channel %s did not deliver, the plan goes on: %s", name, exc)
                failed[name] = str(exc)
        if failed:
            failures = [
                {"event": "message", "channel": name, "conn_id": channels[name].conn_id, "error": why}
                for name, why in failed.items()
            ]
            report_elsewhere(self.plan, failures, context)
            remember_failures(context, failures)
        return {"step": step.name, "sent": sent, "failed": failed, "statuspage": incidents}
