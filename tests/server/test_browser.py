"""The web page in a real headless browser (Debian's chromium driven by Playwright).

Screenshots go to ``artifacts/browser/`` (or ``$PRESAMPLE_ARTIFACTS``) as test artefacts.
Playwright's own browser download is never used: it cannot reach the network here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from presample.server import ServerSettings

from .conftest import dragon_answer, live_server

CHROMIUM = Path(os.environ.get("PRESAMPLE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(
    os.environ.get("PRESAMPLE_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")
)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

if not CHROMIUM.is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page_url(settings: ServerSettings) -> Iterator[str]:
    with live_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, page_url: str):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    # The browser logs every 4xx response; refusing bad input is the page's job, not an error.
    expected = "the server responded with a status of 4"
    page.goto(page_url)
    wait_until(page, "document.getElementById('model').options.length > 0")
    yield page
    context.close()
    errors = [e for e in errors if expected not in e]
    assert errors == [], f"errors in the page: {errors}"


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression until it is true.

    Not ``page.wait_for_function``: it compiles its predicate inside the page,
    which the page's Content-Security-Policy (no eval) rightly refuses;
    ``page.evaluate`` runs through the browser's protocol instead.
    """
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def shoot(page, name: str) -> Path:
    folder = ARTIFACTS / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_lengths_start_at_the_model_default_as_on_the_command_line(page) -> None:
    for name in ("tag_length", "nl_length"):
        assert page.input_value(f"#{name}") == ""
        assert page.locator(f"#{name} option").first.inner_text() == "model default (long)"
    page.get_by_label("Tags and/or a sentence").fill("1girl")
    page.select_option("#nl_length", "very_short")
    with page.expect_request("**/api/presample") as sent:
        page.get_by_label("Tags and/or a sentence").press("Control+Enter")
    body = sent.value.post_data_json
    assert "tag_length" not in body and body["nl_length"] == "very_short"
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)


def test_presample_from_the_page_shows_coloured_tags_and_history(page) -> None:
    page.get_by_label("Tags and/or a sentence").fill("1girl, hatsune miku, scenery")
    page.select_option("#tag_length", "very_short")
    page.select_option("#nl_length", "very_short")
    page.get_by_label("Seed").first.fill("7")
    page.get_by_label("Tags and/or a sentence").press("Control+Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    prompt = page.inner_text("#result-prompt")
    assert "hatsune miku" in prompt
    assert "seed 7" in page.inner_text("#result-meta")
    miku = page.locator(".tag", has_text="hatsune miku").first
    assert miku.get_attribute("title").startswith("characters")
    colour = miku.evaluate("node => getComputedStyle(node).color")
    general = page.locator(".tag", has_text="scenery").first.evaluate(
        "node => getComputedStyle(node).color"
    )
    assert colour != general, "categories have their own colours"
    # Bold means added by the model, as the legend says: the user's own tags are not.
    assert "new" not in (miku.get_attribute("class") or "")
    added = page.locator(".tag.new")
    assert added.count() >= 1 and "added by the model" in added.first.get_attribute("title")
    assert "bold: added by the model" in page.inner_text("#legend")
    assert page.locator("#history li").count() == 1
    shoot(page, "presample")

    copied = "document.getElementById('status').textContent === 'Copied the {}'"
    page.get_by_role("button", name="Copy for A1111").click()
    wait_until(page, copied.format("A1111 prompt"))
    assert page.evaluate("navigator.clipboard.readText()") == page.evaluate(
        "document.getElementById('result-prompt').textContent"
    )
    page.get_by_role("button", name="Copy for ComfyUI").click()
    wait_until(page, copied.format("ComfyUI prompt"))
    assert "hatsune miku" in page.evaluate("navigator.clipboard.readText()")
    # One prompt per text encoder, as the API gives them.
    page.get_by_role("button", name="Copy tags (CLIP)").click()
    wait_until(page, copied.format("tags"))
    assert page.evaluate("navigator.clipboard.readText()").startswith("1girl, hatsune miku")
    page.get_by_role("button", name="Copy FLUX.2 JSON").click()
    wait_until(page, copied.format("FLUX.2 JSON"))
    flux2 = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert "hatsune miku" in flux2["subjects"][0]["description"]

    # Reloading keeps the history; clicking it shows the result again.
    page.reload()
    wait_until(page, "document.getElementById('model').options.length > 0")
    page.locator("#history button").first.click()
    assert page.inner_text("#result-prompt") == prompt


def test_phone_width_has_no_horizontal_scroll(browser, page_url: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(page_url)
    wait_until(page, "document.getElementById('model').options.length > 0")
    width = page.evaluate("document.documentElement.scrollWidth")
    nothing_yet = page.locator("#result").is_hidden()
    shoot(page, "phone")
    context.close()
    assert width <= 375
    assert nothing_yet, "no empty result panel before the first run"


def test_refine_view_picks_a_candidate_by_keyboard_and_undoes(page) -> None:
    pytest.importorskip("presample.refine")
    page.get_by_role("tab", name="Refine").click()
    page.get_by_label("Start from a coarse prompt").fill("1girl, scenery")
    page.locator("#refine-seed").fill("3")
    page.get_by_label("Start from a coarse prompt").press("Control+Enter")
    page.wait_for_selector("#refine-session:not([hidden])", timeout=60_000)
    idle = "!document.body.hasAttribute('aria-busy')"
    wait_until(page, idle, timeout=60_000)
    page.evaluate("document.activeElement.blur()")  # number keys pick outside text fields
    cards = page.locator("#candidates .card")
    for _ in range(12):  # a random model's draws may all be filtered: draw again
        if cards.count():
            break
        page.keyboard.press("r")
        wait_until(page, idle, timeout=60_000)
    assert cards.count() > 0
    chosen = cards.first.locator(".base").inner_text()
    shoot(page, "refine")
    page.keyboard.press("1")
    wait_until(page,
        "document.getElementById('refine-current').textContent === " + repr(chosen),
        timeout=60_000,
    )
    assert "round 1" in page.inner_text("#refine-meta")
    page.get_by_role("button", name="Undo").click()
    wait_until(page,
        "document.getElementById('refine-current').textContent === '1girl, scenery'",
        timeout=60_000,
    )
    assert "round 0" in page.inner_text("#refine-meta")


def test_canvas_view_draws_labelled_regions_over_the_composition(page) -> None:
    page.get_by_role("tab", name="Canvas").click()
    page.get_by_label("An Omost answer", exact=False).fill(dragon_answer())
    page.get_by_role("button", name="Draw").click()
    page.wait_for_selector("#canvas-out:not([hidden])", timeout=60_000)
    wait_until(page,
        "document.getElementById('canvas-image').complete && "
        "document.getElementById('canvas-image').naturalWidth > 0"
    )
    boxes = page.locator("#canvas-stage .box")
    assert boxes.count() == page.locator("#canvas-regions li").count() > 0
    assert boxes.first.inner_text().startswith("1. ")
    shoot(page, "canvas")


def test_errors_are_shown_as_one_line(page) -> None:
    page.get_by_role("tab", name="Canvas").click()
    page.get_by_label("An Omost answer", exact=False).fill("```python\nimport os\n```")
    page.get_by_label("Salvage what is valid").uncheck()
    page.get_by_role("button", name="Draw").click()
    page.wait_for_selector(".status.error")
    assert page.inner_text("#status").startswith("answer: ")
    assert "\n" not in page.inner_text("#status")
    problems = page.locator("#canvas-problems li").all_inner_texts()
    assert any("import" in p for p in problems), problems


def test_a_server_with_a_key_asks_for_it_once(browser, settings: ServerSettings) -> None:
    from dataclasses import replace

    with live_server(replace(settings, api_key="browser-key-123")) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#keybox:not([hidden])")
        assert page.locator("#model option").count() == 0
        page.get_by_label("API key").fill("browser-key-123")
        page.get_by_role("button", name="Save").click()
        wait_until(page, "document.getElementById('model').options.length > 0")
        assert page.locator("#keybox").is_hidden()
        page.reload()  # kept in this browser
        wait_until(page, "document.getElementById('model').options.length > 0")
        context.close()
