"""The worker's web server: health, readiness, counters, metrics, customer profiles.

* ``/livez``: 200 while the loop runs (a supervisor restarts the worker otherwise);
* ``/readyz``: 503 until the group is joined and every owned partition's state
  is restored, then 200 (503 again while the group rebalances);
* ``/stats``: JSON counters (``in == processed + duplicate + late +
  dead_lettered``), the partitions owned, the process id;
* ``/metrics``: Prometheus text; consumer lag is computed at the scrape;
* ``/customers/{id}``: :mod:`anomon.worker.profile_route`, on this server or,
  with ``ANOMON_PROFILE_PORT``, on a server of its own (personal data).

Everything binds ``web_host`` (loopback by default), never a wildcard unless
asked to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("anomon.worker.web")


def health_app(stats: Callable[[], dict[str, Any]], alive: Callable[[], bool],
               ready: Callable[[], bool], before_scrape: Callable[[], Any]) -> web.Application:
    """The routes every worker serves on ``web_host:web_port``."""
    app = web.Application()

    async def livez(request: web.Request) -> web.Response:
        ok = alive()
        return web.json_response({"alive": ok}, status=200 if ok else 503)

    async def readyz(request: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def stats_page(request: web.Request) -> web.Response:
        return web.json_response(stats())

    async def metrics_page(request: web.Request) -> web.Response:
        before_scrape()
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/stats", stats_page)
    app.router.add_get("/metrics", metrics_page)
    return app


class WebServer:
    """Runs aiohttp applications on given addresses; stopped with :meth:`stop`."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []

    async def serve(self, app: web.Application, host: str, port: int) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self.runners.append(runner)
        log.debug("serving on %s:%s", host, port)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
