"""CeleryExecutor pieces of the e2e Airflow stack: the options, the workers' commands, a Redis DB of its own.

The machine's Redis (127.0.0.1:6379) is shared: each stack claims one database number (7 to 15) with an
owner key set NX, clears what an aborted run left there, and flushes only that database when it ends.
Two runs at once (a lead's `make test` beside a helper's) take different numbers, so one never reads the
other's Celery messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REDIS_URL_ENV = "DRFLOW_E2E_REDIS_URL"
"""Redis server of the broker (default redis://127.0.0.1:6379); the stack picks the database number."""
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
BROKER_DBS = range(7, 16)
OWNER_KEY = "drflow:e2e:owner"
CLAIM_TTL_S = 3600
"""An aborted run's claim lapses after an hour, so its database is reused (and cleared) later."""


@dataclass(frozen=True)
class CeleryWorker:
    """One `airflow celery worker`, in its own process group, serving `queues`."""

    name: str
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 2

    @property
    def component(self) -> str:
        """Its key in AirflowStack.processes and the stem of its log file."""
        return f"worker-{self.name}"

    def argv(self, airflow: str, home: Path) -> list[str]:
        return [
            airflow,
            "celery",
            "worker",
            "--celery-hostname",
            f"{self.name}@%h",
            "--queues",
            ",".join(self.queues),
            "--concurrency",
            str(self.concurrency),
            "--pid",
            str(home / f"{self.component}.pid"),
            # Task logs are files in the shared AIRFLOW_HOME; a log server per worker would want port 8793.
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
        ]


@dataclass(frozen=True)
class CeleryExecutorOptions:
    """Run the stack on Airflow's CeleryExecutor: a PostgreSQL metadata database and a Redis broker."""

    metadata_url: str
    """SQLAlchemy URL of an empty PostgreSQL database, e.g. postgresql+psycopg://postgres@127.0.0.1:5433/airflow."""
    broker_url: str
    workers: tuple[CeleryWorker, ...] = (CeleryWorker("w1"), CeleryWorker("w2"))

    def env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
        }


@contextmanager
def claimed_broker(base_url: str | None = None) -> Iterator[str]:
    """A Redis database of this run's own, as a broker URL; flushed (only it) when the run ends."""
    import redis

    base = (base_url or os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL).rstrip("/")
    token = uuid.uuid4().hex
    for db in BROKER_DBS:
        client = redis.Redis.from_url(f"{base}/{db}")
        try:
            claimed = client.set(OWNER_KEY, token, nx=True, ex=CLAIM_TTL_S)
        except redis.ConnectionError as exc:
            raise RuntimeError(
                f"the Celery end-to-end test needs a Redis server at {base} ({exc}); start the machine's Redis "
                f"(redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''), or set {REDIS_URL_ENV}"
            ) from exc
        if not claimed:
            client.close()
            continue
        try:
            for key in client.scan_iter():  # what an aborted run left, not our claim
                if key != OWNER_KEY.encode():
                    client.delete(key)
            yield f"{base}/{db}"
        finally:
            with suppress(redis.RedisError):
                client.flushdb()
            client.close()
        return
    raise RuntimeError(
        f"every Redis database {BROKER_DBS.start}..{BROKER_DBS.stop - 1} of {base} is claimed by another e2e run "
        f"(key {OWNER_KEY}); wait for them to end, or point {REDIS_URL_ENV} at another Redis server"
    )
