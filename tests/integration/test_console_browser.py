"""The review console in a real browser (Playwright driving Debian's headless Chromium,
``/usr/bin/chromium``): log in, work the queue with the keyboard, a label on
``fraud.labels``; two analysts opening the same case, one refused.

Screenshots go to the test's folder, or to ``FRAUD_TEST_SCREENSHOTS_DIR`` when it is set
(``docs/img`` for the documentation's pictures)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from services.api.app import ApiContext, create_app
from services.stack.process import free_port
from streams.events import Reason, ReviewCase
from streams.topics import Topics
from tests.cases.conftest import decision, review_case
from tests.integration.api_fixtures import Keys
from tests.integration.test_case_api import _labels

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture()
def console(context: ApiContext) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "install Debian's chromium (make setup does)"
    with sync_playwright() as playwright:
        opened = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield opened
        opened.close()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FRAUD_TEST_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _seed(context: ApiContext) -> None:
    """A queue worth looking at: a card with history, cards sharing a terminal."""
    assert context.cases is not None
    now = datetime.now(UTC)
    history = [decision(i, card="C1", amount=18.0 + 3 * (i % 4)) for i in range(8)]
    cases: list[ReviewCase] = []
    for i, (card, amount, score) in enumerate(
        [("C1", 412.0, 0.91), ("C2", 95.5, 0.64), ("C3", 250.0, 0.42), ("C4", 38.0, 0.71)]
    ):
        base = review_case(20 + i, card=card, amount=amount, score=score)
        cases.append(
            msgspec.structs.replace(
                base,
                created_at=now - timedelta(minutes=7 * (i + 1)),
                reasons=[
                    Reason(feature="tx_amount", value=amount, contribution=1.4, text="amount"),
                    Reason(
                        feature="card_tx_count_1h",
                        value=6.0,
                        contribution=0.8,
                        text="many transactions in the last hour",
                    ),
                ],
            )
        )
    context.cases.store.ingest(cases, history)


def _log_in(page: Page, url: str, headers: dict[str, str]) -> None:
    page.goto(f"{url}/console/login")
    page.fill("#api_key", headers["X-API-Key"])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Queue")


def test_label_a_case_with_the_keyboard(
    console: str,
    browser: Browser,
    context: ApiContext,
    keys: Keys,
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
) -> None:
    _seed(context)
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    page.goto(f"{console}/console")
    expect(page).to_have_url(f"{console}/console/login")
    _log_in(page, console, keys.ana)
    rows = page.locator("#queue tr.row")
    expect(rows).to_have_count(4)
    assert rows.first.get_attribute("data-case") == "case0020"  # 0.91 x 412 leads
    page.screenshot(path=str(_shots(tmp_path) / "console-queue.png"), full_page=True)

    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("claimed by you (ana)")
    expect(page.locator("table.reasons tbody tr")).to_have_count(2)
    expect(page.locator("table.small").first.locator("tbody tr")).to_have_count(8)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(_shots(tmp_path) / "console-case.png"), full_page=True)

    page.keyboard.press("n")
    page.keyboard.type("spoke to the cardholder: genuine")
    page.keyboard.press("Escape")
    page.keyboard.press("l")
    expect(page).not_to_have_url(f"{console}/console/cases/case0020")
    page.goto(f"{console}/console")
    expect(page.locator("#queue tr.row")).to_have_count(3)
    expect(page.locator('#queue tr[data-case="case0020"]')).to_have_count(0)

    labels = _labels(kafka_bootstrap, topics, want=1)
    assert [(x.transaction_id, x.label, x.analyst) for x in labels] == [("tx0020", "legit", "ana")]
    assert labels[0].note == "spoke to the cardholder: genuine"
    page.goto(f"{console}/console/lead")
    expect(page.locator("#depth-resolved")).to_have_text("1")
    # the verdict moved ana on to the next case, which her browser claimed
    expect(page.locator("#depth-claimed")).to_have_text("1")
    expect(page.locator("#depth-open")).to_have_text("2")
    page.close()


def test_two_analysts_open_the_same_case_and_one_is_refused(
    console: str, browser: Browser, context: ApiContext, keys: Keys
) -> None:
    _seed(context)
    ana = browser.new_context().new_page()
    bo = browser.new_context().new_page()
    _log_in(ana, console, keys.ana)
    _log_in(bo, console, keys.bo)
    ana.goto(f"{console}/console/cases/case0021")
    expect(ana.locator("#status")).to_contain_text("claimed by you (ana)")
    bo.goto(f"{console}/console/cases/case0021")
    expect(bo.locator("#status")).to_contain_text("refused")
    expect(bo.locator("#status")).to_contain_text("claimed by ana")
    expect(bo.locator("#v-fraud")).to_be_disabled()
    bo.keyboard.press("f")  # the key does nothing for an analyst who does not hold the case
    ana.keyboard.press("l")
    expect(ana).not_to_have_url(f"{console}/console/cases/case0021")
    assert context.cases is not None
    page = context.cases.store.case("case0021")
    assert page is not None
    assert (page["state"], page["verdict"], page["resolved_by"]) == ("resolved", "legit", "ana")
