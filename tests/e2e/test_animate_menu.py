"""The Animate message command: right-click a message with an image, fill in the form."""

from __future__ import annotations

from typing import Any

import pytest

from bot.runcomfy.client import MODEL_PATH
from tests.harness.e2e import E2E, WAIT, embed_titles
from tests.harness.images import make_image

PNG = "image/png"


def picture(name: str = "harbour.png", width: int = 640, height: int = 480) -> Any:
    return (name, make_image(width, height), PNG)


async def open_form(e2e: E2E, message: dict[str, Any], user_id: int | None = None) -> Any:
    handle = await e2e.emu.invoke_message_command("Animate", int(message["id"]), user_id=user_id)
    await handle.wait_response(WAIT)
    return handle


def form_inputs(modal: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(label, component type, custom id) of each input of a modal, in order."""
    return [
        (c["label"], c["component"]["type"], c["component"]["custom_id"])
        for c in modal["components"]
    ]


def defaults(modal: dict[str, Any], custom_id: str) -> list[str]:
    [select] = [
        c["component"] for c in modal["components"] if c["component"]["custom_id"] == custom_id
    ]
    return [o["value"] for o in select["options"] if o.get("default")]


async def test_animate_on_an_image_message_asks_for_the_prompt_and_delivers_the_video(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    posted = await emu.send_user_message("the harbour this morning", files=[picture()])
    opened = await open_form(e2e, posted)
    assert opened.response_type == 9
    modal = opened.modal
    assert modal is not None
    # The form's first text input is the prompt; the settings are selects in labels.
    assert form_inputs(modal) == [
        ("Prompt", 4, "video:prompt"),
        ("Resolution", 3, "video:resolution"),
        ("Duration", 3, "video:duration"),
    ]
    assert defaults(modal, "video:resolution") == ["480p"]
    assert defaults(modal, "video:duration") == ["5"]

    submitted = await emu.submit_modal(opened, {"video:prompt": "boats rock as the tide comes in"})
    reply = await e2e.reply_text(submitted)
    assert submitted.ephemeral
    assert "on its way" in reply

    video = await e2e.wait_video()
    assert video["content"].startswith(f"<@{emu.requester_id}> your video is ready!")
    assert "boats rock as the tide comes in" in video["embeds"][0]["description"]
    [sent] = e2e.runcomfy.submitted
    # The provider got the message's own attachment as the first frame.
    [attachment] = posted["attachments"]
    assert f"/{attachment['id']}/harbour.png" in sent["first_frame_image_url"]
    assert "last_frame_image_url" not in sent or sent["last_frame_image_url"] is None
    assert (sent["resolution"], sent["duration"]) == ("480p", 5)
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("1 credit")


async def test_a_second_image_is_offered_as_the_last_frame_and_the_settings_are_picked(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    posted = await emu.send_user_message(
        "before and after", files=[picture("before.png"), picture("after.png", 800, 600)]
    )
    opened = await open_form(e2e, posted)
    modal = opened.modal
    assert modal is not None
    assert [i[2] for i in form_inputs(modal)][-1] == "video:last-frame"
    assert defaults(modal, "video:last-frame") == ["no"]

    submitted = await emu.submit_modal(
        opened,
        {
            "video:prompt": "the sun sets",
            "video:resolution": ["720p"],
            "video:duration": ["10"],
            "video:last-frame": ["yes"],
        },
    )
    assert "on its way" in await e2e.reply_text(submitted)
    await e2e.wait_video()
    [sent] = e2e.runcomfy.submitted
    first, second = posted["attachments"]
    assert f"/{first['id']}/before.png" in sent["first_frame_image_url"]
    assert f"/{second['id']}/after.png" in sent["last_frame_image_url"]
    assert (sent["resolution"], sent["duration"]) == ("720p", 10)
    status = await e2e.wait_status(lambda m: "ready" in embed_titles(m))
    settings = {f["name"]: f["value"] for f in status["embeds"][0]["fields"]}["Settings"]
    assert settings == "720p · 10 s · last frame · 4 credits"
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("4 credits")


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([], "no image attached"),
        ([("notes.txt", b"just words, no picture", "text/plain")], "are not images"),
    ],
)
async def test_a_message_without_a_usable_image_gets_a_private_answer_and_costs_nothing(
    e2e: E2E, files: list[Any], says: str
) -> None:
    emu = e2e.emu
    posted = await emu.send_user_message("nothing to animate here", files=files)
    handle = await open_form(e2e, posted)
    assert handle.modal is None
    reply = await e2e.reply_text(handle)
    assert handle.ephemeral
    assert says in reply and "Nothing was charged" in reply
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 0
    assert [m["id"] for m in emu.channel_messages()] == [posted["id"]]
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("0 credits")


async def test_an_image_the_frame_rules_refuse_is_answered_with_the_rule_and_nothing_charged(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    posted = await emu.send_user_message("tiny", files=[picture("tiny.png", 200, 200)])
    opened = await open_form(e2e, posted)
    submitted = await emu.submit_modal(opened, {"video:prompt": "grow"})
    reply = await e2e.reply_text(submitted)
    assert submitted.ephemeral
    assert "greater than 300 px" in reply and "200" in reply
    assert e2e.runcomfy.count("POST", MODEL_PATH) == 0
    fields = await e2e.usage_fields()
    assert fields["Used today"].startswith("0 credits")
