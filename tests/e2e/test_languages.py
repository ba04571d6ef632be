"""Each member is answered privately in their own Discord language; what the bot posts in a
channel is in the server's; English where there is no catalog. The real bot, on the emulator."""

from __future__ import annotations

import pytest

from bot.config import QuotaConfig
from tests.harness.e2e import E2E, WAIT, custom_ids, embed_titles


def button_labels(message: dict[str, object]) -> list[str]:
    rows = message.get("components") or []
    assert isinstance(rows, list)
    return [str(item.get("label")) for row in rows for item in row.get("components", [])]


@pytest.mark.settings(quota=QuotaConfig(member_credits=1))
async def test_an_italian_member_is_answered_in_italian_and_the_channel_stays_english(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    emu.set_locale(emu.requester_id, "it")

    fields = await e2e.usage_fields()
    assert fields["Usati oggi"] == "0 crediti su 1", fields
    assert fields["Rimasti"] == "1 credito"
    assert "Fondo del server" in fields

    accepted = await e2e.animate("un faro nella tempesta")
    ack = await e2e.reply_text(accepted)
    assert ack.startswith("Il tuo video è in arrivo: https://discord.com/channels/"), ack
    assert "1 rimasti su 1 credito oggi" not in ack and "0 rimasti su 1 credito oggi" in ack

    # The server speaks English: its channel shows the job in English.
    status = await e2e.wait_status(lambda m: "Video ready" in embed_titles(m))
    assert status["content"] == f"Video for <@{emu.requester_id}>"
    video = await e2e.wait_video()
    assert video["content"].startswith(f"<@{emu.requester_id}> your video is ready!")
    assert button_labels(video) == ["Retry", "Remix", "Delete"]

    refused = await e2e.animate("un altro faro")
    text = await e2e.reply_text(refused)
    assert text.startswith("Crediti insufficienti: questo video costa 1 credito"), text
    assert "te ne restano 0 crediti su 1 oggi" in text
    assert text.endswith("Non è stato addebitato nulla.")
    assert "credit " not in text and "Nothing" not in text


async def test_an_italian_server_posts_in_italian_and_an_english_member_reads_english(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    emu.set_guild_locale("it")

    accepted = await e2e.animate("a kite over the dunes")
    ack = await e2e.reply_text(accepted)
    assert ack.startswith("Your video is on its way:"), ack

    status = await emu.wait_for_message(
        lambda m: "Video pronto" in embed_titles(m), WAIT, channel_id=emu.channel_id
    )
    assert status["content"] == f"Video per <@{emu.requester_id}>"
    fields = {f["name"]: f["value"] for f in status["embeds"][0]["fields"]}
    assert fields["Richiesto da"] == f"<@{emu.requester_id}>"
    assert fields["Impostazioni"].endswith("· 1 credito")
    assert fields["Video"].startswith("[Vai al video](")
    video = await e2e.wait_video()
    assert video["content"].startswith(f"<@{emu.requester_id}> il tuo video è pronto!")
    assert button_labels(video) == ["Riprova", "Remix", "Elimina"]
    assert video["embeds"][0]["footer"]["text"].endswith("· 1 credito")

    # Private answers stay in the member's own language, whatever the server speaks.
    fields = await e2e.usage_fields()
    assert "Used today" in fields and "Left" in fields


async def test_a_queued_job_shows_an_italian_cancel_and_an_italian_moderator_reads_italian(
    e2e: E2E,
) -> None:
    emu = e2e.emu
    emu.set_guild_locale("it")
    emu.set_locale(emu.moderator_id, "it")
    e2e.runcomfy.plan_next_job(queue_seconds=60)
    await e2e.animate("a very long queue")
    queued = await emu.wait_for_message(
        lambda m: "In coda" in embed_titles(m) and bool(custom_ids(m)),
        WAIT,
        channel_id=emu.channel_id,
    )
    assert button_labels(queued) == ["Annulla"]
    [cancel] = custom_ids(queued)

    # The moderator cancels it: answered in Italian, and the reason shows in Italian.
    click = await emu.click_button(int(queued["id"]), cancel, user_id=emu.moderator_id)
    assert await e2e.reply_text(click) == "Annullato. I crediti sono stati restituiti."
    final = await emu.wait_for_message(
        lambda m: "Annullato" in embed_titles(m), WAIT, channel_id=emu.channel_id
    )
    fields = {f["name"]: f["value"] for f in final["embeds"][0]["fields"]}
    assert fields["Cosa è successo"] == "Annullato da un moderatore."

    show = await emu.invoke_command("admin show", {}, user_id=emu.moderator_id)
    await show.wait_until(lambda h: h.embeds, WAIT)
    assert show.content == "Impostazioni attuali:"
    assert show.embeds[0]["title"] == "Impostazioni del bot video"


async def test_the_registered_commands_carry_italian_and_a_new_translation_is_synced(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = e2e.emu
    registered = {c["name"]: c for c in emu.registered_commands()}
    assert registered["animate"]["name_localizations"] == {"it": "anima"}
    assert registered["Animate"]["name_localizations"] == {"it": "Anima"}
    assert registered["usage"]["description_localizations"]["it"].startswith("I tuoi crediti")
    assert emu.command_sync_count == 1

    # The catalogs change (a new release's translation): the next start registers again.
    from cogs._i18n import CatalogTranslator

    original = CatalogTranslator.translate

    async def retranslated(
        self: CatalogTranslator, string: object, locale: object, context: object
    ) -> str | None:
        found = await original(self, string, locale, context)  # type: ignore[arg-type]
        return "animazione" if found == "anima" else found

    monkeypatch.setattr(CatalogTranslator, "translate", retranslated)
    await e2e.stop_bot()
    await e2e.start_bot()
    assert emu.command_sync_count == 2
    registered = {c["name"]: c for c in emu.registered_commands()}
    assert registered["animate"]["name_localizations"] == {"it": "animazione"}
