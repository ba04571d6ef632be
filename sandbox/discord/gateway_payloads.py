"""The gateway's first dispatches for a session: READY and the guild's GUILD_CREATE."""

from __future__ import annotations

from .errors import JSON
from .gateway import GUILD_MEMBERS, Session
from .state import World


def ready_payload(world: World, session: Session, gateway_url: str) -> JSON:
    """READY for a freshly identified session."""
    cast = world.cast
    user = world.users[cast.bot_user_id].to_dict()
    user.update(verified=True, mfa_enabled=False, email=None)
    data: JSON = {
        "v": 10,
        "user": user,
        "guilds": [{"id": str(world.guild_id), "unavailable": True}],
        "session_id": session.id,
        "session_type": "normal",
        "resume_gateway_url": gateway_url,
        "application": {"id": str(cast.application_id), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "auth": {},
        "_trace": ['["discord-emulator"]'],
    }
    if session.shard is not None:
        data["shard"] = session.shard
    return data


def guild_create_payload(world: World, session: Session) -> JSON:
    """GUILD_CREATE, with only the bot's own member unless the session has GUILD_MEMBERS."""
    data = world.guild_create_dict()
    if not session.intents & GUILD_MEMBERS:
        bot_id = str(world.cast.bot_user_id)
        data["members"] = [m for m in data["members"] if m["user"]["id"] == bot_id]
    return data
