"""Discord's rules for registering application commands, and the 50035 answers that break them.

Every rule below is from the developer docs, "Interactions > Application Commands"
(developers/interactions/application-commands.mdx), section "Application Command Object"
unless a comment says otherwise.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import JSON, invalid_form

# Application command types ("Application Command Types").
CHAT_INPUT = 1
USER = 2
MESSAGE = 3
COMMAND_TYPES = (CHAT_INPUT, USER, MESSAGE)

# Option types ("Application Command Option Type"): SUB_COMMAND (1) ... ATTACHMENT (11).
OPTION_TYPES = range(1, 12)
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
NUMBER = 10

# "Reference > Locales" (developers/reference.mdx): the only keys a localization dict may use.
LOCALES = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu",
        "nl", "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru",
        "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
    }
)  # fmt: skip

MAX_NAME = 32
MAX_DESCRIPTION = 100
# "Application Command Option Choice Structure": name 1-100, string value up to 100.
MAX_CHOICE = 100
MAX_CHOICES = 25
MAX_OPTIONS = 25
_NAME_PUNCTUATION = frozenset("-_'")


def _is_name_char(char: str) -> bool:
    """One character of ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``."""
    if char in _NAME_PUNCTUATION:
        return True
    if unicodedata.category(char)[0] in ("L", "N"):
        return True
    code = ord(char)
    # Devanagari (U+0900-097F, extended U+A8E0-A8FF) and Thai (U+0E00-0E7F) include marks.
    return 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF or 0x0E00 <= code <= 0x0E7F


def check_chat_input_name(name: Any, path: str) -> None:
    """``CHAT_INPUT`` command and option names: the name regex, lower case where it exists.

    "CHAT_INPUT command names and command option names must match the following regex ...
    If there is a lowercase variant of any letters used, you must use those."
    """
    if not isinstance(name, str) or not name:
        raise invalid_form(path, "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > MAX_NAME:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if not all(_is_name_char(c) for c in name) or name != name.lower():
        raise invalid_form(
            path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
        )


def check_context_menu_name(name: Any, path: str) -> None:
    """``USER`` and ``MESSAGE`` command names: 1-32 characters, mixed case and spaces allowed."""
    if not isinstance(name, str) or not name.strip():
        raise invalid_form(path, "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > MAX_NAME:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def check_description(description: Any, path: str) -> None:
    """A description: 1-100 characters."""
    if not isinstance(description, str) or not 1 <= len(description) <= MAX_DESCRIPTION:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def check_localizations(value: Any, path: str, *, check_value: Any) -> JSON | None:
    """``name_localizations`` / ``description_localizations``: null, or locale -> value.

    "Localization dictionary ... with keys in available locales. Values follow the same
    restrictions as name/description."
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    for locale, text in value.items():
        if locale not in LOCALES:
            raise invalid_form(
                f"{path}.{locale}",
                "ENUM_TYPE_COERCE",
                f'Value "{locale}" is not a valid enum value.',
            )
        check_value(text, f"{path}.{locale}")
    return dict(value)


def check_default_member_permissions(value: Any, path: str) -> str | None:
    """``default_member_permissions``: null or a permission bit set "serialized as a string"."""
    if value is None:
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isdigit():
        raise invalid_form(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    return text


def validate_command(raw: Any, path: str) -> JSON:
    """One entry of a bulk overwrite, checked; returns it with localizations normalised."""
    if not isinstance(raw, dict):
        raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    command = dict(raw)
    kind = command.setdefault("type", CHAT_INPUT)
    if kind not in COMMAND_TYPES:
        raise invalid_form(
            f"{path}.type", "ENUM_TYPE_COERCE", f'Value "{kind}" is not a valid enum value.'
        )
    command["default_member_permissions"] = check_default_member_permissions(
        command.get("default_member_permissions"), f"{path}.default_member_permissions"
    )
    if kind == CHAT_INPUT:
        check_chat_input_name(command.get("name"), f"{path}.name")
        check_description(command.get("description"), f"{path}.description")
        command["name_localizations"] = check_localizations(
            command.get("name_localizations"),
            f"{path}.name_localizations",
            check_value=check_chat_input_name,
        )
        command["description_localizations"] = check_localizations(
            command.get("description_localizations"),
            f"{path}.description_localizations",
            check_value=check_description,
        )
        command["options"] = validate_options(command.get("options") or [], f"{path}.options")
        return command
    # "The description field is not allowed when creating user commands" (and message
    # commands), sections "User Commands" and "Message Commands"; they take no options.
    check_context_menu_name(command.get("name"), f"{path}.name")
    if command.get("description"):
        raise invalid_form(
            f"{path}.description",
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        )
    if command.get("options"):
        raise invalid_form(
            f"{path}.options",
            "APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
            "Context menu commands cannot have options",
        )
    if command.get("description_localizations"):
        raise invalid_form(
            f"{path}.description_localizations",
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        )
    command["description"] = ""
    command["name_localizations"] = check_localizations(
        command.get("name_localizations"),
        f"{path}.name_localizations",
        check_value=check_context_menu_name,
    )
    command["description_localizations"] = None
    command.pop("options", None)
    return command


def validate_options(options: Any, path: str) -> list[JSON]:
    """A command's (or subcommand's) options ("Application Command Option Structure")."""
    if not isinstance(options, list):
        raise invalid_form(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(options) > MAX_OPTIONS:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    names: set[str] = set()
    cleaned: list[JSON] = []
    for index, raw in enumerate(options):
        o_path = f"{path}.{index}"
        if not isinstance(raw, dict):
            raise invalid_form(o_path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        option = dict(raw)
        kind = option.get("type")
        if kind not in OPTION_TYPES or isinstance(kind, bool):
            raise invalid_form(
                f"{o_path}.type", "ENUM_TYPE_COERCE", f'Value "{kind}" is not a valid enum value.'
            )
        check_chat_input_name(option.get("name"), f"{o_path}.name")
        check_description(option.get("description"), f"{o_path}.description")
        for key, check in (
            ("name_localizations", check_chat_input_name),
            ("description_localizations", check_description),
        ):
            if key in option:
                option[key] = check_localizations(option[key], f"{o_path}.{key}", check_value=check)
        if option["name"] in names:
            raise invalid_form(
                o_path,
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        names.add(option["name"])
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            option["options"] = validate_options(option.get("options") or [], f"{o_path}.options")
        else:
            if option.get("required"):
                if seen_optional:
                    raise invalid_form(
                        o_path,
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            _check_choices(kind, option.get("choices") or [], f"{o_path}.choices")
            for key in ("min_length", "max_length"):
                value = option.get(key)
                if value is not None and not 0 <= int(value) <= 6000:
                    raise invalid_form(
                        f"{o_path}.{key}", "NUMBER_TYPE_MAX", "int value should be <= 6000."
                    )
        cleaned.append(option)
    return cleaned


def _check_choices(kind: Any, choices: Any, path: str) -> None:
    if not isinstance(choices, list):
        raise invalid_form(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(choices) > MAX_CHOICES:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, choice in enumerate(choices):
        _check_choice(kind, choice, f"{path}.{index}")


def _check_choice_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_CHOICE:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _check_choice(kind: Any, choice: Any, path: str) -> None:
    if not isinstance(choice, dict) or not isinstance(choice.get("name"), str):
        raise invalid_form(f"{path}.name", "BASE_TYPE_REQUIRED", "This field is required")
    _check_choice_name(choice["name"], f"{path}.name")
    if "name_localizations" in choice:
        check_localizations(
            choice["name_localizations"],
            f"{path}.name_localizations",
            check_value=_check_choice_name,
        )
    value = choice.get("value")
    ok = (
        (kind == STRING and isinstance(value, str))
        or (kind == INTEGER and isinstance(value, int) and not isinstance(value, bool))
        or (kind == NUMBER and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        raise invalid_form(
            f"{path}.value", "BASE_TYPE_CHOICES", "Value does not match the option type."
        )
    if isinstance(value, str) and len(value) > MAX_CHOICE:
        raise invalid_form(
            f"{path}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
        )


def without_localizations(command: JSON, locale: str) -> JSON:
    """A command as ``GET .../commands`` returns it without ``with_localizations``.

    "Retrieving localized commands": those endpoints leave out the dictionaries and give
    ``name_localized`` / ``description_localized`` for the requester's locale, when present.
    """
    out = dict(command)
    for key, localized in (
        ("name_localizations", "name_localized"),
        ("description_localizations", "description_localized"),
    ):
        table = out.pop(key, None)
        if isinstance(table, dict) and locale in table:
            out[localized] = table[locale]
    if isinstance(out.get("options"), list):
        out["options"] = [without_localizations(o, locale) for o in out["options"]]
    if isinstance(out.get("choices"), list):
        out["choices"] = [without_localizations(c, locale) for c in out["choices"]]
    return out
