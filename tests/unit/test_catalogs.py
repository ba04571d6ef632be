"""The message catalogs: the template matches the code, every shipped language is complete,
and what a translator wrote can always be used (placeholders, Discord's name rules)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import COMMAND, LOCALE_DIR, MENU, Text, Words, _, _n, compile_po, words_for
from cogs._i18n import valid_command_name

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = LOCALE_DIR / "seedance.pot"
SHIPPED = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/seedance.po"))
FIELD = re.compile(r"\{(\w*)\}")

Key = tuple[str | None, str]


def keys(catalog: Catalog) -> dict[Key, str | None]:
    """Each message's (context, msgid) and its plural msgid."""
    found: dict[Key, str | None] = {}
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            found[(message.context, message.id[0])] = message.id[1]
        else:
            found[(message.context, message.id)] = None
    return found


def extracted() -> dict[Key, str | None]:
    """What Babel extracts from the code now, with the project's own configuration."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["babel"]["mappings"][0]
    keywords: dict[str, object] = {"_": None, "N_": None, "t": None, "_n": (1, 2)}
    keywords["C_"] = ((1, "c"), 2)
    assert set(config["keywords"].split()) == {"_", "_n:1,2", "N_", "C_:1c,2", "t"}
    found: dict[Key, str | None] = {}
    for folder in ("bot", "cogs"):
        for _file, _line, message, _comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=keywords
        ):
            if isinstance(message, tuple):
                found[(context, message[0])] = message[1]
            else:
                found[(context, message)] = None
    return found


def template() -> Catalog:
    with TEMPLATE.open("rb") as handle:
        return read_po(handle)


def test_the_template_is_what_the_code_says_now() -> None:
    in_code = extracted()
    in_template = keys(template())
    new = sorted(k for k in in_code if k not in in_template)
    gone = sorted(k for k in in_template if k not in in_code)
    assert not new, f"run pybabel extract (README, Translating): not in the .pot: {new[:5]}"
    assert not gone, f"run pybabel extract (README, Translating): no longer in the code: {gone[:5]}"
    assert in_code == in_template  # plural forms too


def test_italian_ships() -> None:
    assert LOCALE_DIR / "it" / "LC_MESSAGES" / "seedance.po" in SHIPPED


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_every_shipped_language_translates_every_message(po: Path) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle)
    wanted = keys(template())
    have = {k: m for m in catalog if m.id for k in [(m.context, _first(m.id))]}
    missing = [k for k in wanted if k not in have]
    assert not missing, f"{po}: missing {missing[:5]} (run pybabel update)"
    untranslated = [
        k for k, m in have.items() if k in wanted and (m.fuzzy or not all(_strings(m.string)))
    ]
    assert not untranslated, f"{po}: untranslated or fuzzy: {untranslated[:5]}"
    assert not [k for k in have if k not in wanted], f"{po}: obsolete messages (pybabel update)"


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_translations_keep_the_placeholders(po: Path) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle)
    for message in catalog:
        if not message.id:
            continue
        wanted = set(FIELD.findall(_first(message.id)))
        for text in _strings(message.string):
            assert set(FIELD.findall(text)) == wanted, (message.id, text)


@pytest.mark.parametrize("po", SHIPPED, ids=lambda p: p.parent.parent.name)
def test_command_names_are_names_discord_takes(po: Path) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle)
    names = [m for m in catalog if m.context == COMMAND]
    assert names
    for message in names:
        assert valid_command_name(message.string), (message.id, message.string)
    for message in catalog:
        if message.context == MENU:
            assert 1 <= len(message.string) <= 32
        elif message.id and message.context is None and len(_first(message.id)) <= 100:
            # A description stays a description: Discord takes 1-100 characters.
            assert all(len(s) <= 200 for s in _strings(message.string))


def _first(msgid: str | tuple[str, ...]) -> str:
    return msgid[0] if isinstance(msgid, tuple | list) else msgid


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def test_italian_words_every_kind_of_message() -> None:
    t = words_for("it")
    assert t("Deleted.") == "Eliminato."
    assert t(_n("{count} credit", "{count} credits", 1)) == "1 credito"
    assert t(_n("{count} credit", "{count} credits", 4)) == "4 crediti"
    # A parameter that is itself a sentence is worded in the same language.
    nested = _(
        "Your prompt was refused by the server's blocklist: {rule}.", rule=_("a blocked word")
    )
    assert (
        t(nested)
        == "Il tuo prompt è stato rifiutato dalla lista nera del server: una parola bloccata."
    )
    assert str(nested) == "Your prompt was refused by the server's blocklist: a blocked word."
    assert t.lookup(COMMAND, "animate") == "anima"


def test_unknown_and_english_locales_fall_back_to_english() -> None:
    for locale in (None, "", "en-US", "en-GB", "xx", "pt-BR", "zz-ZZ"):
        t = words_for(locale)
        assert t.is_english
        assert t("Deleted.") == "Deleted."
        assert t.lookup(COMMAND, "animate") is None


def test_a_job_reason_stored_in_english_is_shown_in_italian() -> None:
    t = words_for("it")
    assert t.stored("Cancelled by a moderator.") == "Annullato da un moderatore."
    assert t.stored(
        "The finished video could not be fetched: the video is larger than the 200 MB "
        "download limit"
    ) == (
        "Non è stato possibile scaricare il video finito: il video supera il limite di "
        "scaricamento di 200 MB"
    )
    # A moderator's own words are theirs: shown as written.
    assert t.stored("too spicy for this server") == "too spicy for this server"
    assert words_for("en-US").stored("Cancelled by a moderator.") == "Cancelled by a moderator."


def test_a_broken_translation_never_loses_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def gettext(self, message: str) -> str:
            return "Ciao {nobody}"

    words = Words("xx", Broken())  # type: ignore[arg-type]
    assert words(Text("Hello {name}", {"name": "Ada"})) == "Hello Ada"
    assert "cannot fill" in caplog.text


def test_the_catalog_compiles_from_its_source(tmp_path: Path) -> None:
    """What the build hook and a source checkout do: the .po becomes a .mo gettext reads."""
    import gettext
    import io

    data = compile_po(LOCALE_DIR / "it" / "LC_MESSAGES" / "seedance.po")
    assert data is not None
    compiled = gettext.GNUTranslations(io.BytesIO(data))
    assert compiled.gettext("Deleted.") == "Eliminato."
    assert compiled.pgettext("menu", "Animate") == "Anima"
