"""The sandbox page's language switch, in headless Chromium with the real bot: a person set
to Italian sees the commands and their private answers in Italian; the server set to Italian
gets its channel posts in Italian."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.test_e2e_browser import page, picture, run_animate
from tests.harness.e2e import E2E

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["page"]  # the fixture, shared with the other browser tests


async def test_the_language_switch_changes_what_the_person_and_the_channel_read(
    e2e: E2E, page: Page, tmp_path: Path
) -> None:
    emu = e2e.emu
    await page.select_option("#member-locale", "it")
    await page.locator("#composer-status", has_text="Discord language is now it").wait_for()
    # The composer shows the commands as an Italian client does; they run as the same command.
    await page.locator("#command-select option[value='animate']", has_text="/anima").wait_for(
        state="attached"
    )
    assert emu.world.users[emu.requester_id].locale == "it"

    await page.select_option("#guild-locale", "it")
    await page.locator("#composer-status", has_text="server's language is now it").wait_for()
    assert emu.world.preferred_locale == "it"

    await run_animate(page, "barche nel porto", picture(tmp_path))
    reply = page.locator("article.message.ephemeral", has_text="Il tuo video è in arrivo")
    await reply.wait_for()
    status = page.locator("article.message", has_text="Video per")
    await status.locator(".embed-title", has_text="Video pronto").wait_for()
    delivered = page.locator("article.message", has=page.locator("video"))
    await delivered.locator("button", has_text="Riprova").wait_for()
    assert "il tuo video è pronto" in await delivered.inner_text()
    shots = os.environ.get("SANDBOX_SCREENSHOTS")
    await page.screenshot(path=str(Path(shots or tmp_path) / "languages.png"), full_page=True)

    # Back to English for this person: the commands read English again.
    await page.select_option("#member-locale", "en-US")
    await page.locator("#command-select option[value='animate']", has_text="/animate").wait_for(
        state="attached"
    )
