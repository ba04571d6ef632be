"""The sandbox page in headless Chromium: post a picture, right-click it, Apps > Animate, fill in
the bot's form in its dialog, and watch the video arrive; then Remix it the same way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.test_e2e_browser import page, picture  # noqa: F401  (the page fixture)
from tests.harness.e2e import E2E

if TYPE_CHECKING:
    from playwright.async_api import Page


async def post_picture(page: Page, text: str, image: Path) -> None:  # noqa: F811
    """Post an ordinary message with a picture, as a person does in the composer."""
    await page.select_option("#command-select", "(message)")
    await page.fill("#option-content", text)
    await page.set_input_files("#option-file", str(image))
    await page.click("#send")


async def test_a_person_right_clicks_a_picture_and_animates_it_through_the_form(
    e2e: E2E,
    page: Page,  # noqa: F811
    tmp_path: Path,
) -> None:
    await post_picture(page, "our harbour at dawn", picture(tmp_path))
    posted = page.locator("article.message", has_text="our harbour at dawn")
    await posted.locator("img").wait_for()

    await posted.click(button="right")
    menu = page.locator("#message-menu")
    await menu.get_by_role("menuitem", name="Animate").click()
    await menu.wait_for(state="detached")

    dialog = page.locator("dialog#modal")
    await dialog.wait_for()
    assert await dialog.locator(".modal-title").inner_text() == "Animate this image"
    # The form's first input is the prompt.
    first = dialog.locator("[data-custom-id]").first
    assert await first.get_attribute("data-custom-id") == "video:prompt"
    await first.fill("fishing boats head out to sea")
    await dialog.locator("[data-custom-id='video:resolution']").select_option("720p")
    await page.screenshot(path=str(tmp_path / "form.png"))
    await dialog.locator("#modal-submit").click()
    await dialog.wait_for(state="detached")

    reply = page.locator("article.message.ephemeral", has_text="on its way")
    await reply.wait_for()
    await page.locator("#messages article.message video").wait_for()
    await page.screenshot(path=str(tmp_path / "delivered.png"), full_page=True)
    [sent] = e2e.runcomfy.submitted
    assert sent["prompt"] == "fishing boats head out to sea"
    assert sent["resolution"] == "720p"

    # Remix opens the same form, pre-filled with what the video was made from.
    video = page.locator("article.message", has=page.locator("video"))
    await video.locator("button", has_text="Remix").click()
    await dialog.wait_for()
    prompt = dialog.locator("[data-custom-id='video:prompt']")
    assert await prompt.input_value() == "fishing boats head out to sea"
    resolution = dialog.locator("[data-custom-id='video:resolution']")
    assert await resolution.input_value() == "720p"
    await dialog.locator("button", has_text="Cancel").click()
    await dialog.wait_for(state="detached")
    assert len(e2e.runcomfy.submitted) == 1
