"""Modals: Discord's rules for a MODAL callback, and the submission a user's client sends back.

Rules are from the developer docs: "Interactions > Receiving and Responding", section
"Interaction Response Object > Modal" (title, custom_id, 1-5 components), and
"Components > Reference" (developers/components/reference.mdx): "Text Input", "Label",
"String Select", "Text Display".
"""

from __future__ import annotations

from typing import Any

from .components import assign_ids
from .errors import JSON, InvocationError, invalid_form

ACTION_ROW = 1
STRING_SELECT = 3
TEXT_INPUT = 4
USER_SELECT = 5
ROLE_SELECT = 6
MENTIONABLE_SELECT = 7
CHANNEL_SELECT = 8
TEXT_DISPLAY = 10
LABEL = 18
FILE_UPLOAD = 19
_SELECTS = (STRING_SELECT, USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT, CHANNEL_SELECT)
_LABEL_CHILDREN = (TEXT_INPUT, *_SELECTS, FILE_UPLOAD)

MAX_TITLE = 45
MAX_CUSTOM_ID = 100
MAX_LABEL = 45
MAX_LABEL_DESCRIPTION = 100
MAX_TEXT = 4000
MAX_PLACEHOLDER = 100
MAX_SELECT_PLACEHOLDER = 150


def _length(value: Any, path: str, low: int, high: int, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not low <= len(value) <= high:
        if value is None or value == "":
            raise invalid_form(path, "BASE_TYPE_REQUIRED", "This field is required")
        raise invalid_form(
            path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )


def _int_in(value: Any, path: str, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_form(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    if value < low:
        raise invalid_form(path, "NUMBER_TYPE_MIN", f"int value should be greater than {low}.")
    if value > high:
        raise invalid_form(path, "NUMBER_TYPE_MAX", f"int value should be <= {high}.")


def check_modal(data: Any) -> JSON:
    """Validate a MODAL callback's ``data``; returns it with component ids filled in."""
    if not isinstance(data, dict):
        raise invalid_form("data", "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    # "custom_id: Developer-defined identifier for the modal, 1-100 characters".
    _length(data.get("custom_id"), "data.custom_id", 1, MAX_CUSTOM_ID)
    # "title: Title of the popup modal, max 45 characters".
    _length(data.get("title"), "data.title", 1, MAX_TITLE)
    components = data.get("components")
    # "components: Between 1 and 5 (inclusive) components that make up the modal".
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        raise invalid_form(
            "data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for index, component in enumerate(components):
        _check_top_level(component, f"data.components.{index}")
    modal = dict(data)
    modal["components"] = assign_ids(components)
    return modal


def _check_top_level(component: Any, path: str) -> None:
    if not isinstance(component, dict):
        raise invalid_form(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    kind = component.get("type")
    if kind == LABEL:
        # "Label Structure": label max 45, description max 100, one child component.
        _length(component.get("label"), f"{path}.label", 1, MAX_LABEL)
        _length(
            component.get("description"),
            f"{path}.description",
            1,
            MAX_LABEL_DESCRIPTION,
            required=False,
        )
        child = component.get("component")
        if not isinstance(child, dict) or child.get("type") not in _LABEL_CHILDREN:
            raise invalid_form(f"{path}.component", "BASE_TYPE_REQUIRED", "This field is required")
        _check_input(child, f"{path}.component", in_label=True)
    elif kind == ACTION_ROW:
        # "Action Row with Text Inputs in modals are now deprecated" but still accepted: one
        # text input per row, which then needs its own (deprecated) label.
        children = component.get("components")
        if not isinstance(children, list) or len(children) != 1:
            raise invalid_form(
                f"{path}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1 in length."
            )
        child = children[0]
        if not isinstance(child, dict) or child.get("type") not in (TEXT_INPUT, *_SELECTS):
            raise invalid_form(
                f"{path}.components.0.type",
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (4,).',
            )
        _check_input(child, f"{path}.components.0", in_label=False)
    elif kind == TEXT_DISPLAY:
        _length(component.get("content"), f"{path}.content", 1, MAX_TEXT)
    else:
        raise invalid_form(
            f"{path}.type",
            "UNION_TYPE_CHOICES",
            'Value of field "type" must be one of (1, 10, 18).',
        )


def _check_input(child: JSON, path: str, *, in_label: bool) -> None:
    _length(child.get("custom_id"), f"{path}.custom_id", 1, MAX_CUSTOM_ID)
    kind = child.get("type")
    if kind == TEXT_INPUT:
        if child.get("style") not in (1, 2):
            message = f'Value "{child.get("style")}" is not a valid enum value.'
            raise invalid_form(f"{path}.style", "ENUM_TYPE_COERCE", message)
        # "The label field on a Text Input is deprecated in favor of label ... on the Label".
        _length(child.get("label"), f"{path}.label", 1, MAX_LABEL, required=not in_label)
        # "min_length: min 0, max 4000"; "max_length: min 1, max 4000".
        _int_in(child.get("min_length"), f"{path}.min_length", 0, MAX_TEXT)
        _int_in(child.get("max_length"), f"{path}.max_length", 1, MAX_TEXT)
        low, high = child.get("min_length"), child.get("max_length")
        if low is not None and high is not None and low > high:
            raise invalid_form(
                f"{path}.min_length",
                "BASE_TYPE_BAD_LENGTH",
                "min_length must be less than or equal to max_length",
            )
        _length(child.get("value"), f"{path}.value", 0, MAX_TEXT, required=False)
        _length(child.get("placeholder"), f"{path}.placeholder", 0, MAX_PLACEHOLDER, required=False)
        return
    if kind == STRING_SELECT:
        options = child.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 25:
            raise invalid_form(
                f"{path}.options", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length."
            )
        for index, option in enumerate(options):
            o_path = f"{path}.options.{index}"
            if not isinstance(option, dict):
                raise invalid_form(o_path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
            _length(option.get("label"), f"{o_path}.label", 1, 100)
            _length(option.get("value"), f"{o_path}.value", 1, 100)
    if kind in _SELECTS:
        _int_in(child.get("min_values"), f"{path}.min_values", 0, 25)
        _int_in(child.get("max_values"), f"{path}.max_values", 1, 25)
        _length(
            child.get("placeholder"),
            f"{path}.placeholder",
            0,
            MAX_SELECT_PLACEHOLDER,
            required=False,
        )


# submission ------------------------------------------------------------------------------


def build_submission(modal: JSON, values: dict[str, Any]) -> JSON:
    """The ``data`` of a MODAL_SUBMIT interaction for what a user typed and picked.

    ``values`` maps custom ids to text (text inputs) or lists of option values (string
    selects). Raises :class:`InvocationError` for anything the client would not send.
    """
    known: set[str] = set()
    components: list[JSON] = []
    for component in modal["components"]:
        kind = component["type"]
        if kind == LABEL:
            child = component["component"]
            known.add(child["custom_id"])
            components.append(
                {"type": LABEL, "id": component["id"], "component": _answer(child, values)}
            )
        elif kind == ACTION_ROW:
            child = component["components"][0]
            known.add(child["custom_id"])
            components.append(
                {"type": ACTION_ROW, "id": component["id"], "components": [_answer(child, values)]}
            )
        else:
            components.append({"type": kind, "id": component["id"]})
    unknown = set(values) - known
    if unknown:
        raise InvocationError(f"the modal has no input(s) {sorted(unknown)}")
    return {"custom_id": modal["custom_id"], "components": components}


def _answer(child: JSON, values: dict[str, Any]) -> JSON:
    custom_id = child["custom_id"]
    kind = child["type"]
    given = values.get(custom_id)
    if kind == TEXT_INPUT:
        text = "" if given is None else given
        if not isinstance(text, str):
            raise InvocationError(f"input {custom_id!r} takes text")
        if child.get("required", True) and not text:
            raise InvocationError(f"input {custom_id!r} is required")
        low, high = child.get("min_length"), child.get("max_length") or MAX_TEXT
        if text and low is not None and len(text) < low:
            raise InvocationError(f"input {custom_id!r} needs at least {low} characters")
        if len(text) > high:
            raise InvocationError(f"input {custom_id!r} takes at most {high} characters")
        return {"type": TEXT_INPUT, "id": child["id"], "custom_id": custom_id, "value": text}
    if kind == STRING_SELECT:
        if given is None:
            # Left alone, a select submits the options it showed as picked.
            picked = [o["value"] for o in child["options"] if o.get("default")]
        else:
            picked = list(given) if isinstance(given, list) else [given]
        allowed = [o["value"] for o in child["options"]]
        if any(p not in allowed for p in picked):
            raise InvocationError(f"select {custom_id!r} takes values among {allowed}")
        low = child.get("min_values", 1)
        high = child.get("max_values", 1)
        if child.get("required", True) and not low <= len(picked) <= high:
            raise InvocationError(f"select {custom_id!r} takes {low} to {high} values")
        return {"type": STRING_SELECT, "id": child["id"], "custom_id": custom_id, "values": picked}
    raise InvocationError(f"the emulator cannot fill a component of type {kind} ({custom_id!r})")
