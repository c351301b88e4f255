"""What a person does in Airflow 3.3's UI, as Playwright steps on a `BrowserSession` (tests/e2e/browser.py).

Selectors are the UI's own: the trigger form's fields are `#element_<param>`, a question's buttons carry
`data-testid="hitl-option-<option>"`. Every helper leaves a screenshot behind (`DRFLOW_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from tests.e2e.browser import BrowserSession

TIMEOUT_MS = 30_000


def _q(value: str) -> str:
    return quote(value, safe="")


def search_dags(session: BrowserSession, text: str) -> list[str]:
    """Type into the DAG list's search box as a person would; the display names it then lists."""
    page = session.page
    page.goto(f"{session.base_url}/dags")
    page.get_by_placeholder(re.compile("search dags", re.I)).first.fill(text)
    page.get_by_text(re.compile(r"^\d+ Dags?$")).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "text => [...document.querySelectorAll('a')].some(a => a.innerText.startsWith(text))",
        arg=text,
        timeout=TIMEOUT_MS,
    )
    session.screenshot(f"dag-search-{text}")
    links = page.locator("a").all_inner_texts()
    return [name for name in links if name.startswith(text)]


def trigger_with_form(session: BrowserSession, dag_id: str, fields: Mapping[str, str]) -> str:
    """Open the DAG, press Trigger, fill only `fields` and submit; the new run's id."""
    page = session.page
    page.goto(f"{session.base_url}/dags/{_q(dag_id)}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog").filter(has_text="Trigger Dag")
    for name, value in fields.items():
        dialog.locator(f"#element_{name}").fill(value)
    submit = dialog.get_by_role("button", name=re.compile("^trigger$", re.I)).last
    session.screenshot(f"trigger-form-{dag_id}")
    if not submit.is_enabled():
        raise AssertionError(f"the trigger form of {dag_id} keeps Trigger disabled with only {sorted(fields)} filled")
    submit.click()
    page.wait_for_url(re.compile(rf"/dags/{re.escape(dag_id)}/runs/[^/]+$"), timeout=TIMEOUT_MS)
    return unquote(page.url.rsplit("/runs/", 1)[1])


def open_question(session: BrowserSession, dag_id: str, run_id: str, task_id: str, shot: str) -> str:
    """The task's Required Action page; the text of its question (subject, body, form)."""
    page = session.page
    page.goto(f"{session.base_url}/dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}/required_actions")
    page.locator("[data-testid^=hitl-option-]").first.wait_for(timeout=TIMEOUT_MS)
    session.screenshot(shot)
    return str(page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body"))


def answer(
    session: BrowserSession,
    dag_id: str,
    run_id: str,
    task_id: str,
    option: str,
    comment: str | None = None,
) -> None:
    """Press `option` on the task's question, after writing `comment` if one is given (else leave it empty)."""
    open_question(session, dag_id, run_id, task_id, f"{task_id}-before-{option}")
    page = session.page
    if comment is not None:
        page.locator("#element_comment").fill(comment)
    button = page.get_by_test_id(f"hitl-option-{option}")
    if not button.is_enabled():
        raise AssertionError(f"{option} on {task_id} is disabled (comment given: {comment is not None})")
    button.click()
    page.get_by_text(f"{task_id} response successful").first.wait_for(timeout=TIMEOUT_MS)
    session.screenshot(f"{task_id}-after-{option}")


def run_row(session: BrowserSession, dag_id: str, run_id: str) -> str:
    """The run's row in the DAG's runs list (its state among it)."""
    page = session.page
    page.goto(f"{session.base_url}/dags/{_q(dag_id)}/runs")
    row = page.get_by_role("row").filter(has_text=run_id)
    row.wait_for(timeout=TIMEOUT_MS)
    session.screenshot(f"runs-list-{dag_id}")
    return str(row.inner_text())


def run_page(session: BrowserSession, dag_id: str, run_id: str, shot: str) -> str:
    """The run's own page: its state, its note and its tasks."""
    page = session.page
    page.goto(f"{session.base_url}/dags/{_q(dag_id)}/runs/{_q(run_id)}")
    page.get_by_text(re.compile(r"\d+ Task Instances?")).first.wait_for(timeout=TIMEOUT_MS)
    session.screenshot(shot)
    return str(page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body"))
