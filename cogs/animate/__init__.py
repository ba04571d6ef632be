"""/animate and everything a job shows its requester: the Launcher (shared by Retry), the
channel notifier, the status message and the Cancel / Retry / Delete buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.animate.cog import AnimateCog

if TYPE_CHECKING:
    from bot.app import SeedanceBot


async def setup(bot: SeedanceBot) -> None:
    await bot.add_cog(AnimateCog(bot))
