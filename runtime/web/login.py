"""Logging in and out: the login form, one-time links from `rosey console`, and logout."""

from __future__ import annotations

import logging
import time
from collections import deque

from aiohttp import web

from runtime.web.auth import Gate, token_matches
from runtime.web.links import LinkChecker
from runtime.web.render import Renderer

log = logging.getLogger("rosey.console")

ATTEMPTS = 10  # wrong tokens from one address within WINDOW before it must wait
WINDOW = 60.0


class Attempts:
    """Wrong tokens per address: guessing a token from one place is slowed to ATTEMPTS a
    minute (the tokens themselves are what keeps guessing hopeless)."""

    def __init__(self, limit: int = ATTEMPTS, window: float = WINDOW) -> None:
        self.limit, self.window = limit, window
        self.failed: dict[str, deque[float]] = {}

    def blocked(self, address: str) -> bool:
        now = time.monotonic()
        for key in [k for k, times in self.failed.items() if times[-1] < now - self.window]:
            del self.failed[key]
        times = self.failed.get(address)
        while times and times[0] < now - self.window:
            times.popleft()
        return times is not None and len(times) >= self.limit

    def fail(self, address: str) -> None:
        self.failed.setdefault(address, deque()).append(time.monotonic())


def local_path(target: str) -> str:
    """Where to go after logging in: a path of this site only (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class Login:
    """GET/POST /login, GET /login/link and POST /logout."""

    def __init__(self, gate: Gate, token: str, links: LinkChecker, render: Renderer) -> None:
        self.gate, self.token, self.links, self.render = gate, token, links, render
        self.attempts = Attempts()

    def install(self, app: web.Application) -> None:
        app.router.add_get("/login", self.form)
        app.router.add_post("/login", self.submit)
        app.router.add_get("/login/link", self.link)
        app.router.add_post("/logout", self.logout)

    async def form(self, request: web.Request) -> web.Response:
        if self.gate.session_of(request) is not None:
            raise web.HTTPSeeOther(local_path(request.query.get("next", "/")))
        return self.render.page(
            request, "login.html", next=local_path(request.query.get("next", "/")), error=""
        )

    async def submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        target = local_path(str(form.get("next") or "/"))
        address = request.remote or ""
        if self.attempts.blocked(address):
            return self.render.page(
                request,
                "login.html",
                status=429,
                next=target,
                error="Too many tries; wait a minute.",
            )
        if not isinstance(given, str) or not token_matches(given.strip(), self.token):
            self.attempts.fail(address)
            log.warning("console: a login with a wrong token from %s", request.remote)
            return self.render.page(
                request, "login.html", status=403, next=target, error="That token is not right."
            )
        return self._open(request, target)

    async def link(self, request: web.Request) -> web.Response:
        problem = self.links.problem(request.query)
        if problem is not None:
            log.warning("console: refused a login link from %s: %s", request.remote, problem)
            return self.render.page(
                request,
                "login.html",
                status=403,
                next="/",
                error=f"That login link cannot be used ({problem}); run `rosey console` again.",
            )
        return self._open(request, "/")

    def _open(self, request: web.Request, target: str) -> web.Response:
        session = self.gate.sessions.create(request.remote or "")
        log.info("console: logged in from %s", request.remote)
        # A page that moves on by itself rather than a redirect: after a link followed from
        # another site (a terminal counts), a redirect would still be cross-site, and the
        # browser would not send the SameSite=Strict cookie it was just given.
        response = self.render.page(request, "moving.html", target=target)
        self.gate.open(response, session)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        self.gate.close(request, response)
        raise response
