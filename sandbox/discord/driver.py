"""What people do on the emulated Discord: run commands, press buttons, submit modals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cdn import AttachmentStore
from .command_rules import CHAT_INPUT, MESSAGE
from .commands import CommandRegistry, build_invocation
from .errors import JSON, DiscordHTTPError, InvocationError
from .gateway import Gateway
from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    InteractionRecord,
)
from .messages import BUTTON, LINK_STYLE, Message, Upload
from .modals import build_submission
from .permissions import ALL_PERMISSIONS, Permission
from .service import DiscordService
from .state import Channel, World

GUILDS_INTENT = 1 << 0


class Driver:
    """Turns a member's action into the interaction Discord's client would produce."""

    def __init__(
        self,
        *,
        world: World,
        service: DiscordService,
        commands: CommandRegistry,
        store: AttachmentStore,
        gateway: Gateway,
    ) -> None:
        self.world = world
        self.service = service
        self.commands = commands
        self.store = store
        self.gateway = gateway

    def invoke_command(
        self,
        name: str,
        values: dict[str, Any],
        *,
        user_id: int | None,
        channel_id: int | None,
    ) -> InteractionRecord:
        """A slash command run by a member (see ``DiscordEmulator.invoke_command``)."""
        user_id = user_id or self.world.cast.requester_id
        channel_id = channel_id or self.world.cast.channel_id
        parts = name.strip().lstrip("/").split()
        if not parts:
            raise InvocationError("no command name given")
        channel = self._channel_or_refuse(channel_id)
        command = self.commands.find(parts[0], channel.guild_id)
        context = self.check_command_allowed(command, user_id, channel)
        invocation = build_invocation(
            command, parts[1:], values, world=self.world, store=self.store, channel_id=channel_id
        )
        self._require_bot_online()
        return self.service.start_interaction(
            kind=APPLICATION_COMMAND,
            user_id=user_id,
            channel_id=channel_id,
            data=invocation.data,
            name=" ".join(parts),
            custom_id=None,
            source=None,
            context=context,
        )

    def invoke_message_command(
        self, name: str, message_id: int, *, user_id: int | None
    ) -> InteractionRecord:
        """A message context-menu command run on a message (Apps > name)."""
        user_id = user_id or self.world.cast.requester_id
        target = self.service.messages.get(int(message_id))
        if target is None or (target.ephemeral_to not in (None, user_id)):
            raise InvocationError(f"no message {message_id} visible to that user")
        channel = self._channel_or_refuse(target.channel_id)
        command = self.commands.find(name, channel.guild_id, MESSAGE)
        context = self.check_command_allowed(command, user_id, channel)
        # Interactions > Receiving and Responding, "Application Command Data Structure":
        # target_id is the message, and resolved.messages holds it (content included: the
        # message content intent does not apply to a context-menu target).
        data: JSON = {
            "id": command["id"],
            "name": command["name"],
            "type": MESSAGE,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.service.render(target)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        self._require_bot_online()
        return self.service.start_interaction(
            kind=APPLICATION_COMMAND,
            user_id=user_id,
            channel_id=channel.id,
            data=data,
            name=name,
            custom_id=None,
            source=None,
            context=context,
            command_type=MESSAGE,
        )

    def post_message(
        self,
        content: str,
        *,
        user_id: int | None,
        channel_id: int | None,
        files: Sequence[tuple[str, bytes, str | None]],
    ) -> Message:
        """A member posting an ordinary message, with files attached as their client does."""
        uploads = [
            Upload(index, name, data, content_type)
            for index, (name, data, content_type) in enumerate(files)
        ]
        try:
            return self.service.create_channel_message(
                channel_id or self.world.cast.channel_id,
                user_id or self.world.cast.requester_id,
                {"content": content},
                uploads,
            )
        except DiscordHTTPError as exc:
            raise InvocationError(f"Discord refused the message: {exc.message}") from exc

    def start_thread(self, name: str, *, channel_id: int | None, user_id: int | None) -> Channel:
        """A member starting a public thread in a text channel (the bot gets THREAD_CREATE)."""
        user_id = user_id or self.world.cast.requester_id
        parent = self._channel_or_refuse(channel_id or self.world.cast.channel_id)
        needed = Permission.VIEW_CHANNEL | Permission.CREATE_PUBLIC_THREADS
        if self.world.channel_permissions(user_id, parent.id) & needed != needed:
            raise InvocationError("the user may not start threads in that channel")
        thread = self.world.add_thread(parent.id, name, user_id)
        # Events > Gateway Events, "Thread Create": the channel, newly_created when just made.
        self.gateway.dispatch(
            "THREAD_CREATE", {**thread.to_dict(), "newly_created": True}, intent=GUILDS_INTENT
        )
        return thread

    def click_button(
        self, message_id: int, custom_id: str, *, user_id: int | None
    ) -> InteractionRecord:
        """A member pressing a button on a message."""
        user_id = user_id or self.world.cast.requester_id
        message = self.service.messages.get(int(message_id))
        if message is None:
            raise InvocationError(f"no message {message_id}")
        if message.ephemeral_to is not None and message.ephemeral_to != user_id:
            raise InvocationError("that ephemeral message is not visible to this user")
        channel = self._channel_or_refuse(message.channel_id)
        if channel.guild_id is not None and not self.service.user_can(
            user_id, channel.id, Permission.VIEW_CHANNEL
        ):
            raise InvocationError("the user cannot see that channel")
        component = dict(message.custom_ids()).get(custom_id)
        if component is None:
            raise InvocationError(f"message {message_id} has no component {custom_id!r}")
        if component.get("type") != BUTTON or component.get("style") == LINK_STYLE:
            raise InvocationError(f"{custom_id!r} is not a button that sends an interaction")
        if component.get("disabled"):
            raise InvocationError(f"button {custom_id!r} is disabled")
        self._require_bot_online()
        data: JSON = {"custom_id": custom_id, "component_type": BUTTON}
        if "id" in component:
            data["id"] = component["id"]
        return self.service.start_interaction(
            kind=MESSAGE_COMPONENT,
            user_id=user_id,
            channel_id=channel.id,
            data=data,
            name=None,
            custom_id=custom_id,
            source=message,
            context=0 if channel.guild_id is not None else 1,
        )

    def submit_modal(
        self, interaction_id: int, values: dict[str, Any], *, user_id: int | None
    ) -> InteractionRecord:
        """The member who saw a modal submitting it: a new MODAL_SUBMIT interaction."""
        opener = self.service.interactions.get(interaction_id)
        if opener is None or opener.modal is None:
            raise InvocationError(f"interaction {interaction_id} opened no modal")
        if opener.modal_submitted:
            raise InvocationError("that modal was already submitted and closed")
        if user_id is not None and user_id != opener.user_id:
            raise InvocationError("only the member the modal was shown to can submit it")
        data = build_submission(opener.modal, values)
        self._require_bot_online()
        source = self.service.messages.get(opener.source_message_id or 0)
        channel = self._channel_or_refuse(opener.channel_id)
        record = self.service.start_interaction(
            kind=MODAL_SUBMIT,
            user_id=opener.user_id,
            channel_id=opener.channel_id,
            data=data,
            name=None,
            custom_id=str(opener.modal["custom_id"]),
            source=source,
            context=0 if channel.guild_id is not None else 1,
        )
        opener.modal_submitted = True
        return record

    # rules of the client -----------------------------------------------------------------

    def _channel_or_refuse(self, channel_id: int) -> Channel:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise InvocationError(f"no channel {channel_id}")
        return channel

    def _require_bot_online(self) -> None:
        if not self.gateway.has_connected_session:
            raise InvocationError("the bot is not connected to the gateway")

    def check_command_allowed(self, command: JSON, user_id: int, channel: Channel) -> int:
        """The interaction context (0 guild, 1 DM) if the member's client offers the command."""
        label = f"/{command['name']}" if command["type"] == CHAT_INPUT else repr(command["name"])
        contexts = command.get("contexts")
        if channel.guild_id is None:
            if command.get("dm_permission") is False or (
                contexts is not None and 1 not in contexts
            ):
                raise InvocationError(f"{label} cannot be used in DMs")
            return 1
        if contexts is not None and 0 not in contexts:
            raise InvocationError(f"{label} cannot be used in a server")
        if user_id not in self.world.members:
            raise InvocationError("that user is not a member of the server")
        perms = self.world.channel_permissions(user_id, channel.id)
        if not perms & Permission.VIEW_CHANNEL:
            raise InvocationError("the user cannot see that channel")
        if not perms & Permission.USE_APPLICATION_COMMANDS:
            raise InvocationError("the user may not use application commands in that channel")
        default = command.get("default_member_permissions")
        if default is not None:
            needed = int(default)
            guild_perms = self.world.guild_permissions(user_id)
            is_admin = guild_perms == ALL_PERMISSIONS or guild_perms & Permission.ADMINISTRATOR
            if not is_admin and (needed == 0 or guild_perms & needed != needed):
                raise InvocationError(
                    f"{label} is hidden from members without its default permissions"
                )
        return 0
