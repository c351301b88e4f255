"""The Airflow plugin (entry point ``airflow.plugins``): the dashboard's FastAPI app and its UI entry.

Every Airflow process loads plugins, so this module imports nothing heavy: the app is built on the first
request the api-server routes to it. Loading it also installs drflow's fix of Airflow's clear
(`airflow_fixes.py`) where the process can clear.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/dr-dashboard"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _FirstUseApp:
    """An ASGI app that builds a FastAPI app (``create_app`` of `module`) when the first request reaches it."""

    def __init__(self, module: str = "drflow.dashboard.app") -> None:
        self._module = module
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from importlib import import_module

            self._app = import_module(self._module).create_app()
        await self._app(scope, receive, send)


class DrflowPlugin(AirflowPlugin):
    name = "drflow"
    fastapi_apps = [
        {"app": _FirstUseApp(), "url_prefix": URL_PREFIX, "name": "drflow DR dashboard"},
        # Escalation adds assignees to a waiting question (see drflow.dashboard.assignees).
        {
            "app": _FirstUseApp("drflow.dashboard.assignees"),
            "url_prefix": "/drflow-hitl",
            "name": "drflow HITL assignees",
        },
    ]
    external_views = [
        {
            "name": "DR dashboard",
            "href": f"{URL_PREFIX}/",
            "url_route": "dr-dashboard",
            "destination": "nav",
            "category": "browse",
        }
    ]

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        from drflow.dashboard.airflow_fixes import apply

        apply()  # lets a failed step of a recovery plan be cleared (apache/airflow#70368)
