"""The dashboard's FastAPI app, mounted by the api-server under /dr-dashboard, behind Airflow's login.

A request needs the user's Airflow token (the UI's ``_token`` cookie, or ``Authorization: Bearer``) and the
auth manager's permission to see the website; a page request without one is sent to Airflow's login page.
The page reads the store through the metrics module and Airflow's REST API with that same token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


async def _authenticated(request: Request) -> tuple[Any, str]:
    """The user and their token, or HTTPException 401/403 (as Airflow's own API answers)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    user = await resolve_user_from_token(token)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status_code=403, detail="this user may not see Airflow's website views")
    assert token is not None  # resolve_user_from_token refuses a missing token
    return user, token


def _airflow_urls(request: Request) -> tuple[str, str]:
    """Where the REST API is (as the api-server knows itself) and the UI's root path (for links)."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or str(request.base_url).removesuffix(
        request.scope.get("root_path", "")
    )
    return base.rstrip("/"), urlsplit(base).path.rstrip("/")


def create_app() -> FastAPI:
    app = FastAPI(title="drflow DR dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request) -> Response:
        try:
            _, token = await _authenticated(request)
        except HTTPException as exc:
            if exc.status_code == 403:
                return HTMLResponse(f"<p>{exc.detail}</p>", status_code=403)
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        api_url, ui_root = _airflow_urls(request)
        html = await run_in_threadpool(_page, api_url, ui_root, token)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    async def status(request: Request) -> Response:
        _, token = await _authenticated(request)
        api_url, ui_root = _airflow_urls(request)
        return JSONResponse(await run_in_threadpool(_status, api_url, ui_root, token))

    return app


def _page(api_url: str, ui_root: str, token: str) -> str:
    from drflow.dashboard.view import dashboard_page

    return dashboard_page(api_url, ui_root, token, datetime.now(UTC))


def _status(api_url: str, ui_root: str, token: str) -> dict[str, Any]:
    from drflow.dashboard.view import dashboard_status

    return dashboard_status(api_url, ui_root, token, datetime.now(UTC))
