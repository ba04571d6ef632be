"""The operator's HTTP endpoint: Prometheus text at ``/metrics``, ``/healthz`` beside it.

Started by ``run_bot`` when ``[metrics] port`` is set, on ``[metrics] host`` (loopback unless
the operator opens it). It also runs the event-loop lag probe, whose figures only matter
when someone scrapes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import ConfigError, MetricsConfig, is_loopback_host
from bot.ops import metrics
from bot.ops.health import Health

log = logging.getLogger(__name__)

LAG_INTERVAL = 0.5
"""Seconds between two event-loop lag samples."""


async def watch_loop_lag(interval: float = LAG_INTERVAL) -> None:
    """Record, forever, how late a timer fires: the time the loop spent on other work."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        metrics.LOOP_LAG.observe(max(0.0, loop.time() - started - interval))


def make_app(health: Health) -> web.Application:
    """The two routes; nothing else is served."""

    async def scrape(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        trouble = await health.trouble()
        if trouble is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"{trouble}\n")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    return app


@contextlib.asynccontextmanager
async def serve_ops(config: MetricsConfig, health: Health) -> AsyncIterator[None]:
    """Serve ``/metrics`` and ``/healthz`` for the body of the ``async with`` (nothing when
    the port is 0). A port that cannot be opened stops the start with one line."""
    if config.port == 0:
        yield
        return
    runner = web.AppRunner(make_app(health), access_log=None)
    await runner.setup()
    lag: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"[metrics] port {config.port} on {config.host} cannot be opened: "
                f"{exc.strerror or exc}"
            ) from None
        if not is_loopback_host(config.host):
            log.warning(
                "metrics and health listen on %s:%d, not only on this machine: anyone who can "
                "reach that port reads them; keep it to your monitoring network",
                config.host,
                config.port,
            )
        host = f"[{config.host}]" if ":" in config.host else config.host
        log.info("metrics at http://%s:%d/metrics", host, config.port)
        lag = asyncio.create_task(watch_loop_lag(), name="event-loop-lag")
        yield
    finally:
        if lag is not None:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
        await health.close()
        await runner.cleanup()
