"""Remix: the requester's form, pre-filled, makes a new video from the same frames."""

from __future__ import annotations

from typing import Any

import pytest

from bot.runcomfy.client import MODEL_PATH
from tests.harness.e2e import E2E, WAIT, custom_ids, embed_titles

REFRESH = "/attachments/refresh-urls"


def remix_id(video: dict[str, Any]) -> str:
    [found] = [c for c in custom_ids(video) if c.startswith("job:remix:")]
    return found


def preset(modal: dict[str, Any]) -> dict[str, Any]:
    """What the form shows before anything is changed: text values and picked options."""
    shown: dict[str, Any] = {}
    for label in modal["components"]:
        child = label["component"]
        if child["type"] == 4:
            shown[child["custom_id"]] = child.get("value")
        else:
            shown[child["custom_id"]] = [o["value"] for o in child["options"] if o.get("default")]
    return shown


@pytest.mark.settings(cooldown_seconds=60.0)
async def test_a_remix_waits_out_the_cooldown_like_any_request(e2e: E2E) -> None:
    await e2e.animate("a fox in the snow")
    video = await e2e.wait_video()
    click = await e2e.emu.click_button(int(video["id"]), remix_id(video))
    await click.wait_response(WAIT)
    submitted = await e2e.emu.submit_modal(click, {"video:prompt": "a fox in the rain"})
    reply = await e2e.reply_text(submitted)
    assert "One video request at a time" in reply and "Nothing was charged" in reply
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 1


async def second_video(e2e: E2E) -> None:
    await e2e.emu.wait_for_message(lambda _m: len(e2e.videos()) == 2, WAIT)


@pytest.mark.settings(cooldown_seconds=0.0)
async def test_the_requester_remixes_a_video_into_a_new_charged_job_from_the_same_frame(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    await e2e.animate("a lighthouse in a storm")
    video = await e2e.wait_video()
    await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    first = e2e.runcomfy.submitted[0]["first_frame_image_url"]

    # Someone else may not remix it: a private no, no form, nothing made.
    other = await emu.click_button(int(video["id"]), remix_id(video), user_id=emu.member_id)
    await other.wait_until(lambda h: h.content, WAIT)
    assert other.ephemeral and "Only the member who asked" in (other.content or "")
    assert other.modal is None

    click = await emu.click_button(int(video["id"]), remix_id(video))
    assert (await click.wait_response(WAIT))["type"] == 9
    assert click.modal is not None
    assert preset(click.modal) == {
        "video:prompt": "a lighthouse in a storm",
        "video:resolution": ["480p"],
        "video:duration": ["5"],
    }
    submitted = await emu.submit_modal(
        click,
        {"video:prompt": "the same lighthouse on a calm night", "video:resolution": ["720p"]},
    )
    assert "on its way" in await e2e.reply_text(submitted)
    assert submitted.ephemeral
    await second_video(e2e)

    again = e2e.runcomfy.submitted[1]
    assert again["prompt"] == "the same lighthouse on a calm night"
    assert (again["resolution"], again["duration"]) == ("720p", 5)
    # The same picture: the status message's kept copy of the first frame.
    assert again["first_frame_image_url"].split("?")[0].endswith("/first-frame.png")
    assert first != again["first_frame_image_url"]
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("3 credits")  # 1 + 2 at 720p


@pytest.mark.settings(cooldown_seconds=0.0)
async def test_a_remix_a_day_later_without_the_kept_copy_refreshes_the_stored_url(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    await e2e.animate("a paper boat on a puddle")
    video = await e2e.wait_video()
    status = await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    stored = e2e.runcomfy.submitted[0]["first_frame_image_url"]
    # The status message (and the copy of the frame on it) is gone; a day later the URL the
    # job stored has expired.
    emu.service.delete_channel_message(emu.channel_id, int(status["id"]), emu.moderator_id)
    emu.advance_clock(25 * 3600)

    click = await emu.click_button(int(video["id"]), remix_id(video))
    await click.wait_response(WAIT)
    submitted = await emu.submit_modal(click, {"video:prompt": "the boat sails away"})
    assert "on its way" in await e2e.reply_text(submitted)
    await second_video(e2e)

    assert emu.request_count("POST", REFRESH) == 1
    again = e2e.runcomfy.submitted[1]["first_frame_image_url"]
    # The same attachment, signed anew.
    assert again.split("?")[0] == stored.split("?")[0]
    assert again != stored
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 2
