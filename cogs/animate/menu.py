"""The Animate message command: right-click a message with an image, fill in the form, get a video.

The message's first usable image is the first frame; a second one is offered as the last
frame. What can be judged before any download (is there an image at all, is it too large) is
answered at once, privately; everything else goes through the Launcher like /animate, so every
gate, cap, the blocklist, the cooldown and the ledger apply.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot import frames
from bot.errors import UserFacingError
from bot.i18n import C_, ENGLISH, Words, _
from bot.models import NewJob
from cogs._i18n import private_words
from cogs.animate.form import Choice, Preset, VideoForm
from cogs.animate.launcher import Launcher, attachment_frame, require_channel
from cogs.animate.notifier import FIRST_FRAME, LAST_FRAME

if TYPE_CHECKING:
    from bot.app import SeedanceBot

log = logging.getLogger(__name__)

MENU_NAME = C_("menu", "Animate")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
FORMATS = frames.ALLOWED_LIST


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether an attachment is worth offering (its bytes are judged later, by the frame rules)."""
    kind = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    return kind.startswith("image/") or attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def usable_images(message: discord.Message, t: Words = ENGLISH) -> list[discord.Attachment]:
    """The message's images that pass the rules Discord's numbers can judge, in order.

    Raises UserFacingError saying plainly (in ``t``'s language) why there is nothing to
    animate.
    """
    if not message.attachments:
        raise UserFacingError(
            _(
                "This message has no image attached, so there is nothing to animate. "
                "Animate works on a message with a {formats} attached. Nothing was charged.",
                formats=_(FORMATS),
            )
        )
    images = [a for a in message.attachments if looks_like_image(a)]
    if not images:
        names = ", ".join(a.filename for a in message.attachments[:5])
        raise UserFacingError(
            _(
                "This message's attachments ({names}) are not images. Animate takes a "
                "{formats}. Nothing was charged.",
                names=discord.utils.escape_markdown(names),
                formats=_(FORMATS),
            )
        )
    usable: list[discord.Attachment] = []
    violations: list[frames.Violation] = []
    for attachment in images:
        meta = frames.AttachmentMeta(
            label=frames.IMAGE_LABEL,
            filename=attachment.filename,
            size=attachment.size,
            content_type=attachment.content_type,
        )
        found = frames.check_metadata(meta)
        if found:
            violations.extend(found)
        else:
            usable.append(attachment)
    if not usable:
        raise UserFacingError(frames.render_violations(violations, t=t))
    return usable


class AnimateMenu:
    """The `Animate` message command and what its form starts."""

    def __init__(self, bot: SeedanceBot, launcher: Launcher) -> None:
        self.bot = bot
        self.launcher = launcher
        self.command = app_commands.ContextMenu(
            name=MENU_NAME,
            callback=self.open_form,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
        )

    async def open_form(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Check the message has an image, then ask for the prompt and settings."""
        if interaction.guild_id is None:
            raise UserFacingError(_("Animate only works in a server channel."))
        t = private_words(interaction)
        images = usable_images(message, t)
        defaults = self.bot.config.animate
        preset = Preset(
            resolution=defaults.default_resolution,
            duration=defaults.default_duration,
            last_frame=False if len(images) > 1 else None,
        )
        form = VideoForm(
            title=t("Animate this image"),
            custom_id=f"animate:form:{message.id}",
            preset=preset,
            costs=self.bot.config.quota.cost,
            on_done=functools.partial(self.submitted, images=images[:2]),
            t=t,
        )
        # A form can only be the first answer: it is the acknowledgement.
        await interaction.response.send_modal(form)

    async def submitted(
        self,
        interaction: discord.Interaction[Any],
        choice: Choice,
        *,
        images: list[discord.Attachment],
    ) -> None:
        """The form came back (acknowledged): start the job like /animate."""
        require_channel(interaction)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        first = images[0]
        last = images[1] if choice.last_frame and len(images) > 1 else None
        frames_in = [attachment_frame(FIRST_FRAME, frames.IMAGE_LABEL, first)]
        if last is not None:
            frames_in.append(attachment_frame(LAST_FRAME, frames.LAST_FRAME_LABEL, last))
        new = NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=choice.prompt,
            image_url=first.url,
            last_frame_url=last.url if last is not None else None,
            resolution=choice.resolution,
            duration=choice.duration,
        )
        await self.launcher.launch(interaction, new, frames_in)
