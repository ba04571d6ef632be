"""What an operator's monitoring sees: the bot's ``/metrics`` and ``/healthz`` over HTTP."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def get(url: str) -> tuple[int, str, str]:
    """Status, content type and text of one GET."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def scrape(base: str) -> tuple[Samples, set[str]]:
    """Every sample of ``/metrics`` by (name, labels), and the metric families' names."""
    status, content_type, text = await get(f"{base}/metrics")
    assert status == 200, text
    assert content_type.startswith("text/plain"), content_type
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, families


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet (nothing counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def wait_health(base: str, status: int, *, within: float = 30.0) -> str:
    """Ask ``/healthz`` until it answers ``status``; its text then."""
    seen: list[tuple[int, str]] = []
    try:
        async with asyncio.timeout(within):
            while True:
                code, _, text = await get(f"{base}/healthz")
                if code == status:
                    return text
                seen.append((code, text))
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"/healthz never answered {status}: {seen[-3:]}") from None
