"""The operations endpoint over aiohttp: /healthz, /readyz and /metrics, and the routes of
whatever extends it (the web console of runtime/web/)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from runtime.config.settings import parse_listen
from runtime.errors import HttpError
from runtime.ops.metrics import Metrics

log = logging.getLogger("rosey.http")

# A readiness check: (ready, one line saying why). It must not hang; each gets CHECK_TIMEOUT.
Check = Callable[[], Awaitable[tuple[bool, str]]]
# Adds routes, middlewares and startup/cleanup hooks to the application before it starts.
Extension = Callable[[web.Application], None]
CHECK_TIMEOUT = 2.0
SHUTDOWN_TIMEOUT = 2.0  # seconds open requests (a console's live feed) get when it stops
__all__ = ["HttpServer", "parse_listen"]  # parse_listen lives with the settings it checks


class HttpServer:
    """Serves `/healthz` (the process is up and its event loop answers), `/readyz` (every check
    passes: 200, else 503, with each check's result as JSON) and `/metrics` (Prometheus)."""

    def __init__(
        self,
        listen: str,
        metrics: Metrics | None = None,
        checks: Mapping[str, Check] | None = None,
        check_timeout: float = CHECK_TIMEOUT,
        fallback: bool = False,
    ) -> None:
        """`fallback`: when the port is taken, listen on a free one instead (the default
        address, which a second Rosey on the same host would find taken)."""
        self.listen, self.metrics, self.fallback = listen, metrics, fallback
        self.checks = dict(checks or {})
        self.check_timeout = check_timeout
        self.address = parse_listen(listen)
        self.port = 0
        self.started = time.monotonic()
        self.extensions: list[Extension] = []  # applied in order by start()
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        host = self.address[0] if self.address else ""
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        """Listen; does nothing when `listen` is off. Raises HttpError when it cannot bind."""
        if self.address is None or self._runner is not None:
            return
        host, port = self.address
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.serve_metrics)
        for extend in self.extensions:
            extend(app)
        # Probes hit these every few seconds: an access log line for each would drown the rest.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            sock = _bind(host, port)
        except OSError as e:
            if not (self.fallback and port and e.errno == errno.EADDRINUSE):
                await runner.cleanup()
                raise HttpError(self.listen, e.strerror or str(e)) from e
            try:
                sock = _bind(host, 0)
            except OSError as again:
                await runner.cleanup()
                raise HttpError(self.listen, again.strerror or str(again)) from again
            log.warning(
                "http.listen %s is taken (another Rosey on this host?); using port %d instead",
                self.listen,
                sock.getsockname()[1],
            )
        try:
            await web.SockSite(runner, sock).start()
        except OSError as e:
            sock.close()
            await runner.cleanup()
            raise HttpError(self.listen, e.strerror or str(e)) from e
        self._runner = runner
        self.port = sock.getsockname()[1]
        self.started = time.monotonic()
        log.info("health, readiness and metrics on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "uptime": round(time.monotonic() - self.started, 3)}
        )

    async def readyz(self, request: web.Request) -> web.Response:
        results = await self.check_all()
        ready = all(ok for ok, _ in results.values())
        body = {
            "ready": ready,
            "checks": {
                name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()
            },
        }
        return web.json_response(body, status=200 if ready else 503)

    async def check_all(self) -> dict[str, tuple[bool, str]]:
        """Every check at once, each bounded by the check timeout; a failing check is not ready."""
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._check(self.checks[n]) for n in names))
        return dict(zip(names, outcomes, strict=True))

    async def _check(self, check: Check) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(self.check_timeout):
                return await check()
        except TimeoutError:
            return False, f"no answer within {self.check_timeout:g}s"
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"

    async def serve_metrics(self, request: web.Request) -> web.Response:
        if self.metrics is None:
            raise web.HTTPNotFound(text="metrics are off")
        body, content_type = self.metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
