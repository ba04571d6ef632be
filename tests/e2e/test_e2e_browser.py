"""The sandbox page in headless Chromium (Debian's), driven by Playwright, with the real bot.

A person's whole flow: pick an image in the composer, type a prompt, run /animate, watch the
status message appear and change, and see the video play in the channel; and press Cancel on
a queued job. Chromium comes from the system (``apt-get install chromium``), never from
``playwright install``. Without it the tests skip locally but fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness.e2e import E2E, WAIT
from tests.harness.images import make_image

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = WAIT * 1000


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail in CI: CI must never silently skip the browser)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    problem = None
    if found is None:
        problem = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{problem}; CI must run the browser tests")
        pytest.skip(problem)
    assert found is not None
    return found


@pytest.fixture
async def page(e2e: E2E, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium on the sandbox page, with the bot online."""
    executable = chromium_path()
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as driver:
        context = await driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        # Chromium asks every site for /favicon.ico on its own; the page names no icon, and
        # the emulator would log that 404 as an unknown route, which the fixture refuses.
        await context.route("**/favicon.ico", lambda route: route.abort())
        try:
            tab = context.pages[0] if context.pages else await context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            # The page's Content-Security-Policy must not block anything the page itself does.
            tab.on(
                "console",
                lambda msg: (
                    errors.append(msg.text) if "Content Security Policy" in msg.text else None
                ),
            )
            await tab.goto(e2e.sandbox.url)
            await tab.locator("#bot-status.online").wait_for()
            await tab.locator("#command-select option[value='animate']").wait_for(state="attached")
            yield tab
        finally:
            await context.close()
    assert errors == [], "the page raised JavaScript errors"


async def run_animate(page: Page, prompt: str, image: Path) -> None:
    """Fill the composer as a person does and send /animate."""
    await page.select_option("#command-select", "animate")
    await page.set_input_files("#option-image", str(image))
    await page.fill("#option-prompt", prompt)
    await page.click("#send")


def picture(tmp_path: Path) -> Path:
    path = tmp_path / "harbour.png"
    path.write_bytes(make_image(640, 480))
    return path


async def test_a_person_runs_animate_in_the_page_and_watches_the_video_arrive(
    e2e: E2E, page: Page, tmp_path: Path
) -> None:
    e2e.runcomfy.plan_next_job(queue_seconds=1.0, run_seconds=1.0)
    await run_animate(page, "boats rocking in the harbour", picture(tmp_path))

    reply = page.locator("article.message.ephemeral", has_text="on its way")
    await reply.wait_for()
    assert "Only you can see this" in await reply.inner_text()

    status = page.locator("article.message", has_text="Video for")
    await status.locator(".embed-title", has_text="Waiting in the queue").wait_for()
    await status.locator("button", has_text="Cancel").wait_for()
    await page.screenshot(path=str(tmp_path / "queued.png"))

    video = page.locator("#messages article.message video")
    await video.wait_for()
    # The browser fetched and understood the H.264 file: it knows its size.
    await page.wait_for_function(
        "() => { const v = document.querySelector('#messages video');"
        " return v && v.readyState >= 1 && v.videoWidth > 0; }"
    )
    size = await video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert size == [96, 64]
    await status.locator(".embed-title", has_text="Video ready").wait_for()
    assert await status.locator("button", has_text="Cancel").count() == 0
    delivered = page.locator("article.message", has=page.locator("video"))
    assert "your video is ready" in await delivered.inner_text()
    # The prompt is shown with the video, as plain text in the embed under it.
    prompt = delivered.locator(".embed-description", has_text="boats rocking in the harbour")
    assert await prompt.count() == 1
    await page.screenshot(path=str(tmp_path / "delivered.png"), full_page=True)
    assert len(e2e.videos()) == 1


async def test_a_person_cancels_a_queued_job_in_the_page(
    e2e: E2E, page: Page, tmp_path: Path
) -> None:
    e2e.runcomfy.plan_next_job(queue_seconds=60)
    await run_animate(page, "a queue that never moves", picture(tmp_path))

    status = page.locator("article.message", has_text="Video for")
    cancel = status.locator("button", has_text="Cancel")
    await cancel.wait_for()
    await cancel.click()

    answer = page.locator("article.message.ephemeral", has_text="Cancelled")
    await answer.wait_for()
    await status.locator(".embed-title", has_text="Cancelled").wait_for()
    await cancel.wait_for(state="detached")
    await page.screenshot(path=str(tmp_path / "cancelled.png"), full_page=True)
    assert await page.locator("#messages video").count() == 0
    assert e2e.videos() == []
