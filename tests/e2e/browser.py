"""A real headless browser for UI tests: Debian's Chromium driven by Playwright, screenshots kept as artifacts.

Playwright's own browser download cannot work offline, so it launches `/usr/bin/chromium` (installed by
`make system-deps`). Screenshots go to `$DRFLOW_TEST_ARTIFACTS` (default `test-artifacts/` in the
checkout), one file per call of `BrowserSession.screenshot`, so a failed run leaves what the page showed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    configured = os.environ.get("DRFLOW_TEST_ARTIFACTS")
    directory = Path(configured) if configured else PROJECT_ROOT / "test-artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class BrowserSession:
    """One logged-out browser context; `page` is Playwright's Page."""

    page: Any
    base_url: str

    def login(self, user: str, password: str) -> None:
        """Airflow's SimpleAuthManager login form, then back to the home page."""
        self.page.goto(f"{self.base_url}/auth/login/")
        self.page.get_by_label(re.compile("username", re.I)).fill(user)
        self.page.get_by_label(re.compile("password", re.I)).fill(password)
        self.page.get_by_role("button", name=re.compile("sign in|log in|login", re.I)).click()
        self.page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))

    def screenshot(self, name: str) -> Path:
        path = artifacts_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browser(base_url: str) -> Iterator[Any]:
    """Yields a factory of logged-out `BrowserSession`s (one context each) in one headless Chromium."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make system-deps` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        contexts: list[Any] = []

        def session() -> BrowserSession:
            context = chromium.new_context(viewport={"width": 1440, "height": 900})
            contexts.append(context)
            return BrowserSession(page=context.new_page(), base_url=base_url)

        try:
            yield session
        finally:
            for context in contexts:
                context.close()
            chromium.close()
