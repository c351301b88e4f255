"""What the dashboard takes from Airflow's REST API, mapped onto components: open recovery runs, approvals
waiting, and a drill run that failed without writing a report (answers in the shape the API gives)."""

from __future__ import annotations

from typing import Any

from drflow.contracts.metrics import DrillFacts, MetricsComponent, MetricsRun
from drflow.dashboard.live import read_live
from drflow.dashboard.view import with_live

DRILL = "dr.shop.orders.drill.weekly"
PLAN = "dr.shop.plan.failover"


class Answers:
    """An ApiClient answering each path with a fixed page, recording what it was asked."""

    def __init__(self, pages: dict[str, list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        self.asked.append((path, dict(params or {})))
        if path.endswith("hitlDetails"):
            return {"hitl_details": self.pages["hitl"], "total_entries": len(self.pages["hitl"])}
        key = "open" if (params or {}).get("state") else "drills"
        return {"dag_runs": self.pages[key], "total_entries": len(self.pages[key])}


def run() -> MetricsRun:
    orders = MetricsComponent(
        "orders", "Orders", "critical", 1800, 300, (), (DrillFacts("weekly", 604800, DRILL),), (), (PLAN,)
    )
    billing = MetricsComponent("billing", "Billing", "high", 3600, 3600, (), (), (), (PLAN,))
    return MetricsRun("shop", (orders, billing), (), None, 86400)


def test_runs_and_approvals_map_to_the_components_a_plan_recovers() -> None:
    api = Answers(
        {
            "open": [{"dag_id": PLAN, "dag_run_id": "manual__1", "state": "running", "start_date": "2026-12-01T10:00"}],
            "hitl": [
                {
                    "task_instance": {"dag_id": PLAN, "dag_run_id": "manual__1", "task_id": "declare"},
                    "subject": "Declare a disaster?",
                }
            ],
            "drills": [
                {"dag_id": DRILL, "dag_run_id": "scheduled__2", "state": "failed", "end_date": "2026-12-01T09:00"},
                {"dag_id": DRILL, "dag_run_id": "scheduled__1", "state": "success", "end_date": "2026-11-24T09:00"},
            ],
        }
    )
    live = read_live([run()], api, "/airflow")  # type: ignore[arg-type]  # any ApiClient
    assert [link.run_id for link in live.open_runs["billing"]] == ["manual__1"]
    assert live.approvals["orders"][0].text == "declare: Declare a disaster?"
    assert live.url(PLAN, "manual__1") == "/airflow/dags/dr.shop.plan.failover/runs/manual__1"
    assert [link.run_id for link in live.failed_drills["orders"]] == ["scheduled__2"]
    asked = {(path, tuple(sorted(params))) for path, params in api.asked}
    assert ("/api/v2/dags/~/dagRuns", ("dag_id_prefix_pattern", "limit", "offset", "state")) in asked

    snapshot = {
        "status": "green",
        "components": [
            {"component": "orders", "status": "green", "reasons": [], "last_proof": {"run_id": "scheduled__1"}},
            {"component": "billing", "status": "green", "reasons": [], "last_proof": None},
        ],
    }
    judged = with_live(snapshot, live)
    assert judged["status"] == "red" and judged["components"][0]["status"] == "red"
    assert judged["components"][0]["reasons"][0].startswith("the newest run of drill weekly run scheduled__2 failed")
    assert judged["components"][1]["status"] == "green"
