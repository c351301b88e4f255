"""A real Airflow 3.3 for end-to-end tests: api-server, scheduler, dag-processor and triggerer, driven over REST.

`airflow_stack(specs_dir, connections)` starts every component in its own process group against a temp
AIRFLOW_HOME (SQLite, LocalExecutor, SimpleAuthManager with the users alice and bob (admins), a
read-only `auditor` that the recovery record reads the API as, and `drflow` that run notes are written
as), the project's `dags/` folder and
`DRFLOW_SPECS_DIR=specs_dir`, on a free loopback port. It always stops them (SIGTERM to each group,
SIGKILL after 30 s). `stack.client(user)` is a small REST client that acts as that user would.

Measured recipe and pitfalls: /work/shared/notes/airflow-e2e.md. The one that matters here: answering a
human-in-the-loop task right after it parks in `awaiting_input` can fail it, because the scheduler has
not yet seen the parked workload exit; `answer()` waits for the scheduler's log line first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from drflow.devtools.airflow_env import local_airflow_env
from drflow.engines.postgres.cluster import free_port

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
USERS = {"alice": "admin", "bob": "admin", "auditor": "viewer", "drflow": "user"}
AUDIT_USER = "auditor"
NOTES_USER = "drflow"
"""The user drflow's tasks write run notes as (role User: may edit DAG runs)."""
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
KEEP_ENV = "DRFLOW_E2E_KEEP"
"""Set to keep the Airflow home (logs, SQLite) of a run for a post-mortem."""


class StackError(RuntimeError):
    """The stack did not start, or did not reach the awaited state; the message carries log tails."""


def _q(value: str) -> str:
    return quote(value, safe="")


@dataclass
class AirflowStack:
    home: Path
    port: int
    env: dict[str, str]
    passwords: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, component: str) -> Path:
        return self.home / f"{component}.log"

    def log_tail(self, component: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.log(component).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def diagnostics(self) -> str:
        return "\n".join(f"--- {c} ({self.log(c)}) ---\n{self.log_tail(c)}" for c in self.processes)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackError(f"airflow {name} exited with code {process.returncode}\n{self.diagnostics()}")

    def client(self, user: str) -> AirflowClient:
        return AirflowClient(self, user, self.passwords[user])


class AirflowClient:
    """Acts as one user through the public REST API (v2)."""

    def __init__(self, stack: AirflowStack, user: str, password: str) -> None:
        self.stack = stack
        self.user = user
        response = requests.post(f"{stack.url}/auth/token", json={"username": user, "password": password}, timeout=30)
        if response.status_code not in (200, 201):
            raise StackError(f"no token for {user}: {response.status_code} {response.text[:300]}")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.stack.url}{path}", timeout=30, **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        response = self.request("GET", path, params=params or None)
        if response.status_code != 200:
            raise StackError(f"GET {path} as {self.user}: {response.status_code} {response.text[:500]}")
        return response.json()

    # -- DAGs and runs --------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 90) -> dict[str, Any]:
        """Until the dag-processor has parsed the DAG (and the DAG has no import error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.stack.check_alive()
            response = self.request("GET", f"/api/v2/dags/{_q(dag_id)}")
            if response.status_code == 200:
                return dict(response.json())
            time.sleep(0.5)
        errors = self.get("/api/v2/importErrors")
        raise StackError(
            f"DAG {dag_id} did not appear within {timeout}s; import errors: {errors}\n{self.stack.diagnostics()}"
        )

    def unpause(self, dag_id: str) -> None:
        response = self.request("PATCH", f"/api/v2/dags/{_q(dag_id)}", json={"is_paused": False})
        if response.status_code != 200:
            raise StackError(f"cannot unpause {dag_id}: {response.status_code} {response.text[:300]}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any], note: str | None = None) -> str:
        body = {"logical_date": None, "conf": dict(conf), "note": note}
        response = self.request("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", json=body)
        if response.status_code != 200:
            raise StackError(f"trigger of {dag_id} as {self.user}: {response.status_code} {response.text[:500]}")
        return str(response.json()["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        page = self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances", limit=100)
        return {ti["task_id"]: ti for ti in page["task_instances"]}

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        ti = self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}")
        return ti.get("state")

    def wait_task(self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 120) -> str:
        """Until the task is in one of `states`; a terminal state that is not wanted fails at once."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state: str | None = None
        while time.monotonic() < deadline:
            self.stack.check_alive()
            state = self.task_state(dag_id, run_id, task_id)
            if state in wanted:
                return state
            if state in TERMINAL_TASK_STATES:
                break
            time.sleep(0.3)
        raise StackError(
            f"task {task_id} of {dag_id} run {run_id} is {state}, not {sorted(wanted)}; tasks: "
            f"{ {t: ti.get('state') for t, ti in self.task_instances(dag_id, run_id).items()} }\n"
            f"{self.stack.diagnostics()}"
        )

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.stack.check_alive()
            run = self.run(dag_id, run_id)
            if run.get("state") in TERMINAL_RUN_STATES:
                return run
            time.sleep(0.5)
        states = {t: ti.get("state") for t, ti in self.task_instances(dag_id, run_id).items()}
        raise StackError(f"run {run_id} of {dag_id} did not finish within {timeout}s; tasks: {states}")

    # -- human in the loop ------------------------------------------------------------------------

    def hitl_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/-1/hitlDetails"

    def hitl(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(self.hitl_path(dag_id, run_id, task_id)))

    def wait_awaiting_input(self, dag_id: str, run_id: str, task_id: str, timeout: float = 120) -> None:
        """Until the task waits for a person AND the scheduler has processed the parked workload's exit."""
        self.wait_task(dag_id, run_id, task_id, {"awaiting_input"}, timeout)
        marker = f"dag_id={dag_id}, task_id={task_id}, run_id={run_id},"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in self.stack.log("scheduler").read_text(errors="replace").splitlines():
                if "TaskInstance Finished" in line and marker in line and "state=awaiting_input" in line:
                    return
            time.sleep(0.2)
        raise StackError(f"scheduler never logged {task_id} of {run_id} as awaiting_input\n{self.stack.diagnostics()}")

    def answer(
        self, dag_id: str, run_id: str, task_id: str, option: str, params_input: Mapping[str, Any] | None = None
    ) -> requests.Response:
        """Answer a waiting task as this user; returns the response (200, 403 not assigned, 409 answered)."""
        self.wait_awaiting_input(dag_id, run_id, task_id)
        body = {"chosen_options": [option], "params_input": dict(params_input or {})}
        return self.request("PATCH", self.hitl_path(dag_id, run_id, task_id), json=body)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
        return self.get(path, deserialize=True).get("value")


def _stack_env(
    home: Path, port: int, specs_dir: Path, passwords_file: Path, users: Mapping[str, str]
) -> dict[str, str]:
    env = {**local_airflow_env(home, specs_dir=specs_dir, port=port)}
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": "drflow-e2e-only",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    return env


@contextmanager
def airflow_stack(
    specs_dir: Path,
    connections: Mapping[str, str] | None = None,
    *,
    users: Mapping[str, str] = USERS,
    extra_env: Mapping[str, str] | None = None,
    startup_timeout: float = 120,
    components: Iterable[str] = COMPONENTS,
) -> Iterator[AirflowStack]:
    """Start the components (default: all four) over `specs_dir` with `connections` (AIRFLOW_CONN_* values);
    stop them after."""
    home = Path(tempfile.mkdtemp(prefix="drflow-e2e-airflow-"))
    port = free_port()
    passwords = {user: f"{user}-e2e-password" for user in users}
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    audit_conn = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{port}",
        "login": AUDIT_USER,
        "password": passwords.get(AUDIT_USER, ""),
    }
    notes_conn = {**audit_conn, "login": NOTES_USER, "password": passwords.get(NOTES_USER, "")}
    env = {
        **os.environ,
        **_stack_env(home, port, specs_dir, passwords_file, users),
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_API": json.dumps(audit_conn),
        "AIRFLOW_CONN_DRFLOW_AIRFLOW_NOTES": json.dumps(notes_conn),
        **(connections or {}),
        **(extra_env or {}),
    }
    stack = AirflowStack(home=home, port=port, env=env, passwords=passwords)
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
        if migrated.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
        for component in components:
            with stack.log(component).open("wb") as log:
                stack.processes[component] = subprocess.Popen(
                    [airflow, component],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        _wait_healthy(stack, startup_timeout)
        yield stack
    finally:
        _stop(stack)
        if os.environ.get(KEEP_ENV):
            print(f"\nAirflow home kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _wait_healthy(stack: AirflowStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            if requests.get(f"{stack.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise StackError(f"the api-server did not answer within {timeout}s\n{stack.diagnostics()}")


def _stop(stack: AirflowStack) -> None:
    for process in stack.processes.values():
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in stack.processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
