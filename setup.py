"""The build hook: the message catalogs are compiled (.po -> .mo) whenever the package is built.

Everything else about the package is in pyproject.toml. ``pip install .``, a wheel and an
editable ``pip install -e .`` all run ``build_py``: a regular build writes the ``.mo`` files
next to the built modules, an editable one next to the ``.po`` files in the source tree.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools import setup
from setuptools.command.build_py import build_py

LOCALE = Path("bot", "locale")


def compile_catalogs(target_root: Path) -> list[str]:
    """Compile every ``bot/locale/*/LC_MESSAGES/*.po`` under ``target_root``; the files made."""
    made = []
    for po in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parent.parent.name, domain=po.stem)
        mo = target_root / po.with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        with mo.open("wb") as handle:
            write_mo(handle, catalog)
        made.append(str(mo))
    return made


class BuildWithCatalogs(build_py):
    """``build_py`` that also compiles the message catalogs."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            compile_catalogs(Path())
        else:
            self._catalogs = compile_catalogs(Path(self.build_lib))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *getattr(self, "_catalogs", [])]


setup(cmdclass={"build_py": BuildWithCatalogs})
