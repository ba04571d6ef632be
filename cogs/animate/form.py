"""The video form: prompt, resolution, duration (and the last frame) in one modal.

The Animate context menu opens it empty, Remix pre-filled with a delivered video's prompt and
settings. The prompt is always the form's first text input (the product's contract); the
settings are selects inside labels, as Discord's modals take them. What the member picked is
handed to ``on_done`` once Discord has been answered, so slow work never loses the form.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import discord

from bot import frames
from bot.errors import UserFacingError
from bot.i18n import ENGLISH, N_, Words, _
from cogs._render import credits
from cogs._tree import UNEXPECTED, answering, reply_ephemeral

log = logging.getLogger(__name__)

RESOLUTIONS = ("480p", "720p", "1080p")
DURATIONS = (5, 10)
PROMPT_ID = "video:prompt"
RESOLUTION_ID = "video:resolution"
DURATION_ID = "video:duration"
LAST_FRAME_ID = "video:last-frame"
YES, NO = "yes", "no"
TITLE_LIMIT = 45


@dataclass(frozen=True)
class Choice:
    """What the member asked for in the form."""

    prompt: str
    resolution: str
    duration: int
    last_frame: bool


@dataclass(frozen=True)
class Preset:
    """What the form shows before the member changes anything."""

    prompt: str = ""
    resolution: str = "480p"
    duration: int = 5
    last_frame: bool | None = None
    """None: no last frame to offer; True/False: offered, and picked or not."""
    last_frame_label: str = N_("Last frame")
    last_frame_yes: str = N_("Use the second image as the last frame")
    """Msgids, worded in the form's language."""


OnDone = Callable[[discord.Interaction[Any], Choice], Awaitable[None]]


def _select(custom_id: str, options: list[discord.SelectOption]) -> discord.ui.Select[Any]:
    return discord.ui.Select(custom_id=custom_id, options=options, min_values=1, max_values=1)


class VideoForm(discord.ui.Modal):
    """One video's prompt and settings; the submission goes to ``on_done``, acknowledged."""

    def __init__(
        self,
        *,
        title: str,
        custom_id: str,
        preset: Preset,
        costs: Mapping[str, Mapping[int, int]],
        on_done: OnDone,
        t: Words = ENGLISH,
    ) -> None:
        super().__init__(title=title[:TITLE_LIMIT], custom_id=custom_id, timeout=15 * 60)
        self._on_done = on_done
        self.prompt = discord.ui.TextInput[VideoForm](
            custom_id=PROMPT_ID,
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=frames.PROMPT_MAX_CHARS,
            default=preset.prompt[: frames.PROMPT_MAX_CHARS] or None,
            placeholder=t("What should happen in the video"),
        )
        self.add_item(discord.ui.Label(text=t("Prompt"), component=self.prompt))
        self.resolution = _select(
            RESOLUTION_ID,
            [
                discord.SelectOption(
                    label=res,
                    value=res,
                    description=_cost_line(costs, res, t),
                    default=res == preset.resolution,
                )
                for res in RESOLUTIONS
                if res in costs
            ],
        )
        self.add_item(discord.ui.Label(text=t("Resolution"), component=self.resolution))
        self.duration = _select(
            DURATION_ID,
            [
                discord.SelectOption(
                    label=t("{seconds} seconds", seconds=seconds),
                    value=str(seconds),
                    default=seconds == preset.duration,
                )
                for seconds in DURATIONS
            ],
        )
        self.add_item(discord.ui.Label(text=t("Duration"), component=self.duration))
        self.last_frame: discord.ui.Select[Any] | None = None
        if preset.last_frame is not None:
            self.last_frame = _select(
                LAST_FRAME_ID,
                [
                    discord.SelectOption(
                        label=t(preset.last_frame_yes), value=YES, default=preset.last_frame
                    ),
                    discord.SelectOption(
                        label=t("No last frame"), value=NO, default=not preset.last_frame
                    ),
                ],
            )
            self.add_item(
                discord.ui.Label(
                    text=t(preset.last_frame_label),
                    description=t("Seedance ignores the last frame at 1080p."),
                    component=self.last_frame,
                )
            )

    def choice(self) -> Choice:
        """What was submitted; a value Discord should never have let through is refused."""
        resolution = _one(self.resolution)
        duration = _one(self.duration)
        if resolution not in RESOLUTIONS or duration not in {str(d) for d in DURATIONS}:
            raise UserFacingError(_("That resolution or duration is not offered."))
        return Choice(
            prompt=self.prompt.value.strip(),
            resolution=resolution,
            duration=int(duration),
            last_frame=self.last_frame is not None and _one(self.last_frame) == YES,
        )

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        answering(interaction)
        # Discord drops an interaction not answered within 3 s: acknowledge before any work.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self._on_done(interaction, self.choice())
        except UserFacingError as exc:
            await reply_ephemeral(interaction, exc.text)

    async def on_error(  # type: ignore[override]  # Modal's own signature
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        log.error("the video form %s failed", self.custom_id, exc_info=error)
        await reply_ephemeral(interaction, UNEXPECTED)


def _one(select: discord.ui.Select[Any]) -> str:
    values = select.values
    return str(values[0]) if values else ""


def _cost_line(costs: Mapping[str, Mapping[int, int]], resolution: str, t: Words) -> str:
    by_seconds = costs.get(resolution, {})
    parts = [
        t("{credits} for {seconds} s", credits=credits(by_seconds[s], t), seconds=s)
        for s in DURATIONS
        if s in by_seconds
    ]
    return " · ".join(parts)[:100]
