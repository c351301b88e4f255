"""`make airflow`: the real Airflow UI and scheduler over the sandbox, on 127.0.0.1:8080.

Starts api-server, scheduler, dag-processor and triggerer in their own process groups with a SQLite
metadata database in the sandbox's `airflow` directory, prints how to log in, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from drflow.devtools.airflow_env import local_airflow_env, migrate
from drflow.devtools.sandbox.airflow_users import USERS, audit_connection, notes_connection

# admin and oncall (USERS) are the approvers of the example plans (four eyes: one triggers, the other approves);
# auditor is the read-only user the recovery record reads Airflow's REST API as; drflow is the user tasks
# write run notes as (it may edit DAG runs).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM/SIGHUP stop the components as Ctrl-C does


def main(port: int = 8080) -> int:
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    from drflow.devtools.sandbox.control import sandbox_root, sandbox_up
    from drflow.devtools.sandbox.postgres import SandboxError

    try:
        state = sandbox_up()
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)  # e.g. after a failover drill: says to run drflow sandbox reset
        return 1
    home = sandbox_root() / "airflow"
    env = {**os.environ, **local_airflow_env(home, port=port), **state["connections"]}
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({user: password for user, (_, password) in USERS.items()}))
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, (r, _) in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW_CONN_DRFLOW_AIRFLOW_API": audit_connection(port),
            "AIRFLOW_CONN_DRFLOW_AIRFLOW_NOTES": notes_connection(port),
        }
    )
    migrate(env)
    airflow = str(Path(sys.executable).with_name("airflow"))
    processes = []
    for component in COMPONENTS:
        log = (home / f"{component}.log").open("w")
        processes.append(
            subprocess.Popen(
                [airflow, component], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        print(f"\nAirflow is up: {url}")
        for user, (role, password) in USERS.items():
            print(f"  log in as {user} / {password} (role {role})")
        print(f"  logs: {home}/*.log   stop: Ctrl-C")
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        print("an Airflow component exited; see the logs above", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    raise SystemExit(main())
