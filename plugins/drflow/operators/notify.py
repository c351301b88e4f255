"""The `notify` step of recovery plans: send the step's message to the channels it names."""

from __future__ import annotations

from typing import Any

from drflow.operators.step_base import PlanStepOperator, refuse


class NotifyOperator(PlanStepOperator):
    """Send ``step["message"]`` (with the run's plan, reason and link) to ``step["channels"]``.

    A broken channel does not hold up the plan while another channel delivered: the step fails only
    when no channel delivered, and its result lists the failures.
    """

    ui_color = "#f9e79f"

    def execute(self, context: Any) -> dict[str, Any]:
        from drflow.notifiers import channel_notifier

        channels = self.plan.get("notifications") or {}
        names = list(self.step.get("channels") or [])
        unknown = [name for name in names if name not in channels]
        if unknown:
            refuse(
                f"step {self.step['name']} names notification channels {', '.join(unknown)} that the spec "
                f"does not define",
                f"add them under notifications: in the spec, or fix the step's channels "
                f"(defined: {', '.join(channels) or 'none'})",
            )
        sent: list[str] = []
        failed: dict[str, str] = {}
        for name in names:
            notifier = channel_notifier(name, channels[name], "message", self.plan, message=self.step["message"])
            try:
                notifier.notify(context)
                sent.append(name)
            except Exception as exc:
                self.log.warning("channel %s did not deliver: %s", name, exc)
                failed[name] = str(exc)
        if not sent:
            raise RuntimeError(
                "no channel delivered the message: "
                + "; ".join(f"{name}: {why}" for name, why in failed.items())
                + ". Fix the connections named above, then clear this task."
            )
        return {"step": self.step["name"], "sent": sent, "failed": failed}
