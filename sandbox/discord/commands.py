"""Application commands: what the bot registers, and invocations shaped like Discord's client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cdn import AttachmentStore
from .command_rules import CHAT_INPUT, MESSAGE, validate_command
from .errors import JSON, InvocationError, invalid_form
from .snowflake import SnowflakeGenerator
from .state import World

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

_MAX_COMMANDS = 100


@dataclass
class CommandRegistry:
    """The commands the bot has registered, globally and per guild."""

    application_id: int
    ids: SnowflakeGenerator
    global_commands: list[JSON] = field(default_factory=list)
    guild_commands: dict[int, list[JSON]] = field(default_factory=dict)
    sync_count: int = 0
    sync_history: list[tuple[int | None, list[str]]] = field(default_factory=list)

    def registered(self, guild_id: int | None) -> list[JSON]:
        """The commands registered in one scope (``None`` = global)."""
        if guild_id is None:
            return list(self.global_commands)
        return list(self.guild_commands.get(guild_id, []))

    def overwrite(self, guild_id: int | None, payload: Any) -> list[JSON]:
        """``PUT .../commands``: replace a scope's commands, keeping ids of unchanged names."""
        if not isinstance(payload, list):
            raise invalid_form(
                "_root", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
            )
        if len(payload) > _MAX_COMMANDS:
            raise invalid_form("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        previous = {(c["name"], c["type"]): c for c in self.registered(guild_id)}
        seen: set[tuple[str, int]] = set()
        result: list[JSON] = []
        for index, raw in enumerate(payload):
            command = validate_command(raw, str(index))
            key = (command["name"], command["type"])
            if key in seen:
                raise invalid_form(
                    str(index),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
            old = previous.get(key)
            command_id = old["id"] if old else str(self.ids.next())
            stored: JSON = {
                "id": command_id,
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "default_member_permissions": command["default_member_permissions"],
                "type": command["type"],
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [0],
                "nsfw": bool(command.get("nsfw", False)),
            }
            if command.get("options"):
                stored["options"] = command["options"]
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            result.append(stored)
        if guild_id is None:
            self.global_commands = result
        else:
            self.guild_commands[guild_id] = result
        self.sync_count += 1
        self.sync_history.append((guild_id, [c["name"] for c in result]))
        return result

    def available(self, guild_id: int | None) -> list[JSON]:
        """Commands a user can see in a place: guild commands first, then global ones."""
        found = self.registered(guild_id) if guild_id is not None else []
        keys = {(c["name"], c["type"]) for c in found}
        found.extend(c for c in self.global_commands if (c["name"], c["type"]) not in keys)
        return found

    def find(self, name: str, guild_id: int | None, kind: int = CHAT_INPUT) -> JSON:
        """A command by its top-level name and type, as the client's pickers find it."""
        for command in self.available(guild_id):
            if command["name"] == name and command["type"] == kind:
                return command
        if kind == MESSAGE:
            raise InvocationError(f"the bot has not registered a message command named {name!r}")
        raise InvocationError(f"the bot has not registered a command named /{name}")


# invocation ------------------------------------------------------------------------------


@dataclass
class Invocation:
    """The ``data`` of an APPLICATION_COMMAND interaction, built from a user's input."""

    command: JSON
    data: JSON


def build_invocation(
    command: JSON,
    subcommand_path: list[str],
    values: dict[str, Any],
    *,
    world: World,
    store: AttachmentStore,
    channel_id: int,
) -> Invocation:
    """Shape interaction data as Discord's client does, refusing what the client would refuse."""
    schema: list[JSON] = list(command.get("options") or [])
    chain: list[JSON] = []
    for name in subcommand_path:
        match = next(
            (
                o
                for o in schema
                if o["name"] == name and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
            ),
            None,
        )
        if match is None:
            raise InvocationError(f"/{command['name']} has no subcommand {name!r}")
        chain.append(match)
        schema = list(match.get("options") or [])
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        names = ", ".join(o["name"] for o in schema)
        raise InvocationError(f"/{command['name']} needs a subcommand: one of {names}")

    resolved: dict[str, dict[str, JSON]] = {}
    leaf_options: list[JSON] = []
    unknown = set(values) - {o["name"] for o in schema}
    if unknown:
        raise InvocationError(f"unknown option(s) {sorted(unknown)} for /{command['name']}")
    for option in schema:
        name = option["name"]
        if name not in values or values[name] is None:
            if option.get("required"):
                raise InvocationError(f"option {name!r} is required")
            continue
        value = _convert(
            option, values[name], world=world, store=store, channel_id=channel_id, resolved=resolved
        )
        leaf_options.append({"name": name, "type": option["type"], "value": value})

    options = leaf_options
    for link in reversed(chain):
        options = [{"name": link["name"], "type": link["type"], "options": options}]

    data: JSON = {
        "id": command["id"],
        "name": command["name"],
        "type": command["type"],
    }
    if options:
        data["options"] = options
    if resolved:
        data["resolved"] = resolved
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return Invocation(command=command, data=data)


def _convert(
    option: JSON,
    value: Any,
    *,
    world: World,
    store: AttachmentStore,
    channel_id: int,
    resolved: dict[str, dict[str, JSON]],
) -> Any:
    name = option["name"]
    kind = option["type"]
    if kind == STRING:
        if not isinstance(value, str):
            raise InvocationError(f"option {name!r} takes text")
        low, high = option.get("min_length"), option.get("max_length")
        if low is not None and len(value) < low:
            raise InvocationError(f"option {name!r} needs at least {low} characters")
        if high is not None and len(value) > high:
            raise InvocationError(f"option {name!r} takes at most {high} characters")
        if not value:
            raise InvocationError(f"option {name!r} cannot be empty")
    elif kind in (INTEGER, NUMBER):
        if isinstance(value, str):
            try:
                value = int(value) if kind == INTEGER else float(value)
            except ValueError:
                raise InvocationError(f"option {name!r} takes a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvocationError(f"option {name!r} takes a number")
        if kind == INTEGER and not isinstance(value, int):
            raise InvocationError(f"option {name!r} takes a whole number")
        low, high = option.get("min_value"), option.get("max_value")
        if low is not None and value < low:
            raise InvocationError(f"option {name!r} must be at least {low}")
        if high is not None and value > high:
            raise InvocationError(f"option {name!r} must be at most {high}")
    elif kind == BOOLEAN:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise InvocationError(f"option {name!r} takes true or false")
    elif kind in (USER, MENTIONABLE, ROLE):
        target = _as_id(value, name)
        if kind != ROLE and target in world.users:
            users = resolved.setdefault("users", {})
            users[str(target)] = world.users[target].to_dict()
            if target in world.members:
                members = resolved.setdefault("members", {})
                members[str(target)] = world.members[target].to_dict(
                    with_user=False, permissions=world.channel_permissions(target, channel_id)
                )
        elif kind != USER and target in world.roles:
            resolved.setdefault("roles", {})[str(target)] = world.roles[target].to_dict()
        else:
            raise InvocationError(f"option {name!r}: no such user or role {target}")
        value = str(target)
    elif kind == CHANNEL:
        target = _as_id(value, name)
        channel = world.channels.get(target)
        if channel is None or channel.guild_id is None:
            raise InvocationError(f"option {name!r}: no such channel {target}")
        types = option.get("channel_types")
        if types and channel.type not in types:
            raise InvocationError(f"option {name!r}: channel type {channel.type} not allowed")
        resolved.setdefault("channels", {})[str(target)] = {
            "id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "permissions": str(world.channel_permissions(world.cast.bot_user_id, channel.id)),
            "parent_id": None,
        }
        value = str(target)
    elif kind == ATTACHMENT:
        raw_id = value.get("id") if isinstance(value, dict) else value
        stored = store.get(_as_id(raw_id, name))
        if stored is None:
            raise InvocationError(f"option {name!r}: upload the file with upload_attachment first")
        resolved.setdefault("attachments", {})[str(stored.id)] = store.to_dict(stored)
        value = str(stored.id)
    else:
        raise InvocationError(f"option {name!r} has a type ({kind}) the emulator cannot fill")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        allowed = ", ".join(str(c["value"]) for c in choices)
        raise InvocationError(f"option {name!r} must be one of: {allowed}")
    return value


def _as_id(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvocationError(f"option {name!r} takes an id, got {value!r}") from None


def command_summary(command: JSON, locale: str | None = None) -> list[JSON]:
    """A command flattened to its runnable forms (``"admin budget set"``) with their options;
    ``label`` and ``description`` as a client in ``locale`` shows them."""
    out: list[JSON] = []

    def shown(item: JSON, key: str) -> str:
        table = item.get(f"{key}_localizations") or {}
        return str(table.get(locale) or item.get(key, ""))

    def walk(prefix: str, label: str, options: list[JSON], description: str) -> None:
        subs = [o for o in options if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        if not subs:
            out.append(
                {"name": prefix, "label": label, "description": description, "options": options}
            )
            return
        for sub in subs:
            walk(
                f"{prefix} {sub['name']}",
                f"{label} {shown(sub, 'name')}",
                list(sub.get("options") or []),
                shown(sub, "description"),
            )

    walk(
        command["name"],
        "/" + shown(command, "name"),
        list(command.get("options") or []),
        shown(command, "description"),
    )
    return out
