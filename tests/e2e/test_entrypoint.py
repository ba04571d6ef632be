"""The image's commands outside a container: ``seedance-bot run`` with the image's config (its
database path moved off /data, its endpoints pointed at the emulators), and the HEALTHCHECK's
``seedance-bot health`` asking it, as Docker would, until a SIGTERM stops the bot cleanly.

``python -m bot`` is the console script's own ``main`` (tests/unit/test_image.py checks that),
run from this checkout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tomllib
from pathlib import Path

from sandbox.world import Sandbox
from tests.harness.e2e import FAST
from tests.harness.ops import free_port

ROOT = Path(__file__).resolve().parents[2]


def toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower()


def image_config_for(sandbox: Sandbox, database: Path, port: int) -> str:
    """The image's config file with what only differs outside a container changed."""
    image = tomllib.loads((ROOT / "docker" / "config.toml").read_text())
    image["database"]["path"] = str(database)
    image["metrics"]["port"] = port
    image["discord"] = {
        "api_base_url": sandbox.discord.api_base,
        "gateway_url": sandbox.discord.gateway_url,
    }
    image["runcomfy"] = {"base_url": sandbox.runcomfy.base_url}
    image["logging"] = {"format": "json"}
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
        for section, keys in image.items()
    )


async def seedance_bot(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def health(env: dict[str, str]) -> tuple[int, str]:
    """`seedance-bot health`, as the HEALTHCHECK runs it: exit code and what it printed."""
    process = await seedance_bot("health", env=env)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, (out + err).decode().strip()


async def test_the_images_commands_run_the_bot_and_report_its_health(tmp_path: Path) -> None:
    port = free_port()
    async with Sandbox(FAST) as sandbox:
        config = tmp_path / "config.toml"
        config.write_text(image_config_for(sandbox, tmp_path / "data" / "bot.sqlite3", port))
        assert sandbox.secrets.discord_token and sandbox.secrets.runcomfy_token
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_")},
            "PYTHONPATH": str(ROOT),
            "SEEDANCE_BOT_CONFIG": str(config),  # as the image sets it
            "DISCORD_TOKEN": sandbox.secrets.discord_token,
            "RUNCOMFY_API_TOKEN": sandbox.secrets.runcomfy_token,
        }
        # Nothing answers yet: unhealthy, saying where it looked.
        code, said = await health(env)
        assert code == 1
        assert said.startswith(f"seedance-bot health: no answer from http://127.0.0.1:{port}/")

        bot = await seedance_bot("run", env=env)
        try:
            async with asyncio.timeout(60):
                while (await health(env))[0] != 0:
                    assert bot.returncode is None, "the bot stopped while starting"
                    await asyncio.sleep(0.2)
            assert await health(env) == (0, "seedance-bot health: ok")
            assert sandbox.discord.gateway.has_connected_session
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(bot.communicate(), 60)
        # SIGTERM is a clean stop, as `docker stop` sends it.
        assert bot.returncode == 0, err.decode()[-2000:]
        assert (tmp_path / "data" / "bot.sqlite3").exists()

    # The logs asked for in the config: JSON lines, no token anywhere.
    lines = err.decode().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(f"127.0.0.1:{port}/metrics" in r["message"] for r in records)
    assert any(r["logger"] == "bot.app" and "logged in as" in r["message"] for r in records)
    everything = out.decode() + err.decode()
    assert sandbox.secrets.discord_token not in everything
    assert sandbox.secrets.runcomfy_token not in everything

    # With the endpoint off there is nothing to ask: unhealthy, saying why.
    config.write_text("[metrics]\nport = 0\n")
    assert await health(env) == (
        1,
        "seedance-bot health: [metrics] port is 0 (off), so the bot serves no /healthz to ask",
    )
