"""A local Discord emulator the real discord.py client runs against, with a sandbox page."""

from .errors import DiscordHTTPError, InvocationError
from .events import EmulatorEvent, Subscription
from .interactions import InteractionFailed, InteractionHandle, RejectedCall
from .permissions import Permission
from .request_log import RequestRecord
from .server import DiscordEmulator
from .state import Cast

__all__ = [
    "Cast",
    "DiscordEmulator",
    "DiscordHTTPError",
    "EmulatorEvent",
    "InteractionFailed",
    "InteractionHandle",
    "InvocationError",
    "Permission",
    "RejectedCall",
    "RequestRecord",
    "Subscription",
]
