"""What the Animate message command answers before any form opens."""

from __future__ import annotations

from unittest.mock import create_autospec

import discord
import pytest

from bot.errors import UserFacingError
from cogs.animate.menu import usable_images


def attachment(filename: str, size: int, content_type: str | None) -> discord.Attachment:
    made = create_autospec(discord.Attachment, instance=True)
    made.filename, made.size, made.content_type = filename, size, content_type
    return made


def message(*attachments: discord.Attachment) -> discord.Message:
    made = create_autospec(discord.Message, instance=True)
    made.attachments = list(attachments)
    return made


def test_an_image_over_30_mb_is_refused_with_its_size_before_any_download() -> None:
    big = attachment("huge.png", 31_000_000, "image/png")
    with pytest.raises(UserFacingError) as refused:
        usable_images(message(big))
    assert "31" in refused.value.message and "30 MB" in refused.value.message


def test_images_are_picked_in_order_past_other_files_and_oversized_ones() -> None:
    first = attachment("a.jpg", 1_000, None)  # no declared type: the name says picture
    notes = attachment("notes.txt", 10, "text/plain")
    big = attachment("b.png", 30_000_000, "image/png")  # 30 MB is not under 30 MB
    last = attachment("c.webp", 2_000, "image/webp")
    assert usable_images(message(first, notes, big, last)) == [first, last]
