"""What moderators see: /admin, its embeds, the mod-log desk and the Approve / Deny buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cogs.moderation.admin import AdminCog
from cogs.moderation.buttons import ApproveButton, DenyButton
from cogs.moderation.desk import ModLogDesk

if TYPE_CHECKING:
    from bot.app import SeedanceBot


async def setup(bot: SeedanceBot) -> None:
    bot.add_dynamic_items(ApproveButton, DenyButton)
    desk = ModLogDesk(bot)
    bot.runner.desk = desk
    await bot.add_cog(AdminCog(bot, desk))


async def teardown(bot: SeedanceBot) -> None:
    bot.remove_dynamic_items(ApproveButton, DenyButton)
    bot.runner.desk = None
