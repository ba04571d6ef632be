"""Words in the reader's language: gettext catalogs, English as the fallback.

Every sentence the bot says is an English msgid marked for Babel's extractor and looked up in
the catalog of the reader's Discord locale (``bot/locale/<lang>/LC_MESSAGES/seedance.po``,
compiled to ``.mo`` when the package is built or installed). Placeholders are named,
``{name}``, filled with :meth:`str.format` (in a sentence with placeholders a literal brace
is written twice; a sentence without any is taken as it is).

- :func:`_` and :func:`_n` make a :class:`Text`: a sentence not yet worded, for code that does
  not know who will read it (the engine's errors, the frame rules). ``str(text)`` is English.
- :func:`N_` and :func:`C_` only mark a string (a constant, a command's name) for extraction.
- :func:`words_for` gives the :class:`Words` of one locale; ``t(...)`` words a msgid or a Text.
"""

from __future__ import annotations

import functools
import gettext
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DOMAIN = "seedance"
LOCALE_DIR = Path(__file__).with_name("locale")
"""The catalogs: ``<lang>/LC_MESSAGES/seedance.po`` (and the ``.mo`` compiled from it)."""
ENGLISH_LOCALE = "en-US"

COMMAND = "command"
"""Message context of a slash command's, group's or option's name (lowercase, no spaces)."""
MENU = "menu"
"""Message context of a context-menu command's name (free text, up to 32 characters)."""
CHOICE = "choice"
"""Message context of an option choice's name."""

_FIELD = re.compile(r"\{(\w+)\}")


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction; it is worded later, where its reader is known."""
    return msgid


def C_(context: str, msgid: str) -> str:
    """Mark ``msgid`` for extraction under a message context (command names, choices)."""
    return msgid


@dataclass(frozen=True)
class Text:
    """A sentence to be worded for its reader: an English msgid and its parameters.

    A parameter that is itself a Text is worded in the same language.
    """

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    count: int = 1

    def __str__(self) -> str:
        return ENGLISH(self)


def _(msgid: str, /, **params: object) -> Text:
    """A sentence to word later (see :class:`Text`)."""
    return Text(msgid, params)


def _n(singular: str, plural: str, count: int, /, **params: object) -> Text:
    """A sentence with a number in it; ``{count}`` is that number."""
    return Text(singular, {"count": count, **params}, plural, count)


class Words:
    """One locale's catalog: ``t("msgid", name=value)`` or ``t(text)`` gives the sentence."""

    def __init__(self, locale: str, catalog: gettext.NullTranslations) -> None:
        self.locale = locale
        self._catalog = catalog
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    @property
    def is_english(self) -> bool:
        return type(self._catalog) is gettext.NullTranslations

    def __call__(self, message: str | Text, /, **params: object) -> str:
        if isinstance(message, Text):
            if message.plural is not None:
                template = self._catalog.ngettext(message.msgid, message.plural, message.count)
            else:
                template = self._catalog.gettext(message.msgid)
            return self._format(template, message.msgid, {**message.params, **params})
        return self._format(self._catalog.gettext(message), message, params)

    def _format(self, template: str, msgid: str, params: Mapping[str, object]) -> str:
        if not params:
            return template
        shown = {k: self(v) if isinstance(v, Text) else v for k, v in params.items()}
        for candidate in (template, msgid):
            try:
                return candidate.format_map(shown)
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                # A catalog's broken placeholder must not cost the member their answer.
                log.warning("catalog %s: cannot fill %r: %r", self.locale, candidate, exc)
        return msgid

    def lookup(self, context: str | None, msgid: str) -> str | None:
        """The catalog's own translation of ``msgid`` (None when it has none)."""
        if context is None:
            found = self._catalog.gettext(msgid)
        else:
            found = self._catalog.pgettext(context, msgid)
        return None if self.is_english or found == msgid else found

    def stored(self, text: str) -> str:
        """Text the engine stored in English (a job's end reason), in this language.

        The stored text is matched against the catalog's sentences, parameters included; a
        text that matches none (a moderator's own words) is shown as it was written.
        """
        if self.is_english:
            return text
        exact = self.lookup(None, text)
        if exact is not None:
            return exact
        for pattern, msgid in self._parametrised():
            found = pattern.fullmatch(text)
            if found is not None:
                params = {k: self.stored(v) for k, v in found.groupdict().items()}
                return self._format(self._catalog.gettext(msgid), msgid, params)
        return text

    def _parametrised(self) -> list[tuple[re.Pattern[str], str]]:
        if self._templates is None:
            catalog: dict[Any, str] = getattr(self._catalog, "_catalog", {})
            msgids = [m for m in catalog if isinstance(m, str) and "\x04" not in m]
            templates = []
            for msgid in msgids:
                if not _FIELD.search(msgid) or not _FIELD.sub("", msgid).strip():
                    continue  # no fields, or nothing but fields: never matched
                parts = _FIELD.split(msgid)
                regex = "".join(
                    re.escape(part.replace("{{", "{").replace("}}", "}"))
                    if i % 2 == 0
                    else f"(?P<{part}>.+?)"
                    for i, part in enumerate(parts)
                )
                try:
                    templates.append((re.compile(regex, re.DOTALL), msgid))
                except re.error:
                    continue  # a name used twice: never a stored sentence
            # The longest fixed text first: the most specific sentence wins.
            templates.sort(key=lambda pair: -len(_FIELD.sub("", pair[1])))
            self._templates = templates
        return self._templates


ENGLISH = Words(ENGLISH_LOCALE, gettext.NullTranslations())


@functools.cache
def shipped_languages() -> tuple[str, ...]:
    """The catalogs this installation has, by directory name (``it``, ``pt_BR`` ...)."""
    if not LOCALE_DIR.is_dir():
        return ()
    return tuple(
        sorted(
            d.name
            for d in LOCALE_DIR.iterdir()
            if (d / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
            or (d / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
        )
    )


def catalog_language(locale: str | None) -> str | None:
    """The shipped catalog for a Discord locale (``it``, ``pt-BR``), or None: English."""
    if not locale:
        return None
    shipped = shipped_languages()
    full = str(locale).replace("-", "_")
    for candidate in (full, full.split("_", 1)[0]):
        if candidate in shipped and candidate != "en":
            return candidate
    return None


def words_for(locale: object) -> Words:
    """The words of a Discord locale (``"it"``, ``discord.Locale.italian``); English when the
    locale is unknown, missing, or has no catalog."""
    value = getattr(locale, "value", locale)
    language = catalog_language(value if isinstance(value, str) else None)
    return ENGLISH if language is None else _words(language)


@functools.cache
def _words(language: str) -> Words:
    return Words(language, _load(language))


def _load(language: str) -> gettext.NullTranslations:
    """The compiled catalog; straight from the ``.po`` (through Babel) when it is newer or
    was never compiled, as in a source checkout."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    fresh = mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime)
    if not fresh and po.is_file():
        compiled = compile_po(po)
        if compiled is not None:
            return gettext.GNUTranslations(io.BytesIO(compiled))
    if mo.is_file():
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    log.warning("no compiled catalog for %s and Babel is not installed: English it is", language)
    return gettext.NullTranslations()


def compile_po(po: Path) -> bytes | None:
    """A ``.po`` file compiled to ``.mo`` bytes, or None when Babel is not installed."""
    try:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
    except ImportError:
        return None
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()
