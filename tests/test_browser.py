"""The page in a real browser: Playwright driving Debian's chromium (never `playwright install`).

Asks the forest-coverage question, clicks citation marker [1] and checks that the 出处 panel
highlights the quoted indicator row; checks that a <script> question shows as text and that
Markdown image / link syntax in a question is neither loaded nor linked; records a 👍 in the
feedback log. Saves screenshots/browser-ask.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def page(app_server: dict) -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-wqy-microhei)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
            pg.set_default_timeout(30_000)
            pg.goto(app_server["url"])
            pg.wait_for_selector("#pq-input textarea")
            yield pg
        finally:
            browser.close()


def ask(page, question: str, turn: int) -> None:
    page.fill("#pq-input textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#pq-sources [data-turn="{turn}"]')  # the panel is updated last


def test_ask_click_marker_highlights_source(page) -> None:
    from playwright.sync_api import expect

    assert "政策问答" in page.title()
    ask(page, "2025年森林覆盖率目标是多少？", 1)
    chat = page.locator("#pq-chat")
    expect(chat).to_contain_text("62.6")
    marker = chat.locator('a.pq-marker[href="#cite-1-1"]').first
    expect(marker).to_have_text("[1]")
    marker.click()
    card = page.locator("#cite-1-1")
    expect(card).to_have_class("pq-cite pq-active")
    mark = card.locator(".pq-cite-body mark")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("森林覆盖率")
    expect(card).to_contain_text("62.6")
    assert "#cite" not in page.url  # the page script handled the click (no jump, no new tab)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "browser-ask.png"), full_page=True)


def test_feedback_vote_is_logged(page, app_server: dict) -> None:
    from playwright.sync_api import expect

    page.get_by_text("这条回答有帮助吗？").click()
    page.get_by_label("补充意见").fill("引用清楚")
    page.get_by_role("button", name="👍 有帮助").click()
    expect(page.locator("#pq-feedback-status")).to_contain_text("已记录")
    rec = json.loads(Path(app_server["feedback"]).read_text(encoding="utf-8").splitlines()[-1])
    assert rec["vote"] == "up" and rec["comment"] == "引用清楚"
    assert rec["question"] == "2025年森林覆盖率目标是多少？" and rec["citations"]


def test_script_question_renders_as_text(page) -> None:
    from playwright.sync_api import expect

    evil = '<script>window.__pq_xss=1</script><img src=x onerror="window.__pq_xss=2">'
    ask(page, evil, 2)
    chat = page.locator("#pq-chat")
    expect(chat).to_contain_text("<script>window.__pq_xss=1</script>")
    assert chat.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => window.__pq_xss") is None
    expect(page.locator("#pq-sources")).to_contain_text("<script>")


def test_markdown_image_in_a_question_is_not_loaded(page) -> None:
    from playwright.sync_api import expect

    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "127.0.0.1:1/" in r.url else None)
    evil = "2025年森林覆盖率目标是多少？![x](http://127.0.0.1:1/x.png)"
    ask(page, evil, 3)
    chat = page.locator("#pq-chat")
    expect(chat).to_contain_text("![x](http://127.0.0.1:1/x.png)")  # shown as text
    assert chat.locator('img[src*="127.0.0.1:1"]').count() == 0
    assert chat.locator('a[href*="127.0.0.1:1"]').count() == 0  # nor a link (GFM autolink)
    assert not requested
    marker = chat.locator('a.pq-marker[href="#cite-3-1"]').first  # our citation links still work
    expect(marker).to_have_text("[1]")
