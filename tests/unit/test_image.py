"""The Docker image, checked without a container engine: hadolint on the Dockerfile, the
properties an operator relies on, and the image's own config.

Building and running the image needs a Docker daemon, which CI does not have; the commands
the image runs (`seedance-bot run`, `seedance-bot health`) are run as they are in
tests/e2e/test_entrypoint.py.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from bot.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            split.append([])
        split[-1].append(instruction)
    return split


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_dependencies_come_from_the_lock_in_their_own_layer() -> None:
    build, _final = stages()
    runs = [(i, args) for i, (word, args) in enumerate(build) if word == "RUN"]
    copies = [(i, args) for i, (word, args) in enumerate(build) if word == "COPY"]
    [(lock_copy, _)] = [(i, a) for i, a in copies if a == "requirements.lock ./"]
    [(install, _)] = [
        (i, a) for i, a in runs if "--require-hashes" in a and "-r requirements.lock" in a
    ]
    # The lock alone is copied before the install, the source only after it, so a change to
    # the code never reinstalls the dependencies.
    source = min(i for i, a in copies if a.startswith(("bot", "cogs", "pyproject.toml")))
    assert lock_copy < install < source
    assert "--only-binary=:all:" in build[install][1]
    [project] = [a for i, a in runs if i > source]
    assert "--no-deps" in project and "--no-build-isolation" in project


def test_the_final_image_is_slim_non_root_and_checks_its_health() -> None:
    build, final = stages()
    assert build[0][1].endswith(" AS build")
    base = final[0][1]
    assert base == build[0][1].removesuffix(" AS build")
    assert "slim" in base
    words = [word for word, _ in final]
    # Nothing is installed or compiled in the final stage: it only copies the environment.
    assert not any("apt-get" in args or "pip " in args for word, args in final if word == "RUN")
    assert ("COPY", "--from=build /opt/seedance /opt/seedance") in final
    [user] = [args for word, args in final if word == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert words.index("USER") < words.index("ENTRYPOINT")
    assert ("VOLUME", '["/data"]') in final
    [health] = [args for word, args in final if word == "HEALTHCHECK"]
    assert health.endswith('CMD ["seedance-bot", "health"]')
    assert ("ENTRYPOINT", '["seedance-bot"]') in final
    assert ("CMD", '["run"]') in final


def test_the_images_config_keeps_the_database_on_the_volume_and_serves_health() -> None:
    final = stages()[1]
    env = " ".join(args for word, args in final if word == "ENV")
    [copied] = [args for word, args in final if word == "COPY" and "config.toml" in args]
    source, target = copied.split()
    assert f"SEEDANCE_BOT_CONFIG={target}" in env
    config = load_config(ROOT / source, required=True)
    assert config.database.path.parent == Path("/data")
    assert config.metrics.port != 0
    assert ("EXPOSE", str(config.metrics.port)) in final
    assert config.metrics.host == "127.0.0.1"  # loopback unless the operator opens it


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        part
        for word, args in instructions()
        if word == "COPY" and not args.startswith("--from")
        for part in args.split()[:-1]
    ]
    assert copied
    for path in copied:
        assert (ROOT / path).exists(), path
        # Docker matches each pattern against the path from the context's root, and a
        # matched folder takes everything in it.
        parts = Path(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = [p for p in ignored for prefix in prefixes if fnmatch.fnmatch(prefix, p)]
        assert excluded == [], path


def test_the_console_script_is_the_cli_python_m_bot_runs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["seedance-bot"] == "bot.cli:main"
    assert "from bot.cli import main" in (ROOT / "bot" / "__main__.py").read_text()
