"""The lock files: made from this pyproject.toml, and pinning a version of every requirement
that its specifier allows (the image installs requirements.lock, CI requirements-dev.lock)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins(lock: str) -> dict[str, list[str]]:
    """Package -> the versions the lock pins (one per Python-version branch)."""
    found: dict[str, list[str]] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            found.setdefault(canonicalize_name(match[1]), []).append(match[2])
    return found


def test_the_locks_were_made_from_this_pyproject() -> None:
    result = subprocess.run(
        ["bash", "scripts/lock", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_requirement_is_pinned_within_its_specifier_with_hashes() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    runtime = [*project["dependencies"], *data["build-system"]["requires"]]
    for lock, wanted in (
        ("requirements.lock", runtime),
        ("requirements-dev.lock", [*runtime, *project["optional-dependencies"]["dev"]]),
    ):
        pinned = pins(lock)
        for text in wanted:
            requirement = Requirement(text)
            versions = pinned.get(canonicalize_name(requirement.name))
            assert versions, f"{lock} lacks {requirement.name}: run scripts/lock"
            assert all(requirement.specifier.contains(v) for v in versions), (lock, text)
        body = (ROOT / lock).read_text()
        unhashed = re.findall(r"^[A-Za-z0-9._-]+==[^\n]*[^\\]$", body, re.MULTILINE)
        assert unhashed == [], f"{lock} pins without hashes: {unhashed}"
    # The image runs exactly what CI tests.
    dev = pins("requirements-dev.lock")
    assert all(dev.get(name) == versions for name, versions in pins("requirements.lock").items())
