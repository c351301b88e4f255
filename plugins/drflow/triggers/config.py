"""The event trigger behind `config:` backups: hash the config every poll interval, fire on a change.

It runs in Airflow's triggerer as the watcher of the component's config asset (event-driven
scheduling): each event updates the asset, which runs the config backup DAG once. The last hash
seen is kept in the asset's state store, so a triggerer restart neither misses a change made while
it was down nor fires again for content already seen. The first poll of a config never seen fires
(its first version must be stored). A source that cannot be read is logged and polled again; it
never fires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from drflow.engines.config.source import ConfigSourceError, read_source

log = logging.getLogger(__name__)
STATE_KEY = "drflow_config_sha256"


class ConfigChangeTrigger(BaseEventTrigger):
    def __init__(self, source: dict[str, Any], poll_interval_s: float) -> None:
        super().__init__()
        self.source = dict(source)
        self.poll_interval_s = float(poll_interval_s)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"source": self.source, "poll_interval_s": self.poll_interval_s},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        where = self.source.get("path") or f"{self.source.get('conn_id')}{self.source.get('endpoint', '')}"
        last = await self._load()
        while True:
            try:
                snapshot = await asyncio.to_thread(read_source, self.source)
            except ConfigSourceError as exc:
                log.warning("config of %s not readable, polling again: %s", where, exc)
            else:
                digest = snapshot.sha256
                if digest != last:
                    log.info("config of %s changed: %s -> %s", where, last, digest)
                    yield TriggerEvent(
                        {"sha256": digest, "previous_sha256": last, "size": snapshot.size, "files": len(snapshot.files)}
                    )
                    last = digest
                    await self._save(digest)
            await asyncio.sleep(self.poll_interval_s)

    async def _load(self) -> str | None:
        if self.asset_state_store is None:
            return None
        try:
            value = await self.asset_state_store.aget(STATE_KEY)
        except Exception as exc:  # the state store is an optimisation: without it, fire once on start
            log.warning("cannot read the last config hash from the asset state store: %s", exc)
            return None
        return value if isinstance(value, str) else None

    async def _save(self, digest: str) -> None:
        if self.asset_state_store is None:
            return
        try:
            await self.asset_state_store.aset(STATE_KEY, digest)
        except Exception as exc:
            log.warning("cannot keep the config hash in the asset state store: %s", exc)
