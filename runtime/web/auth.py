"""Who may use the console: sessions after a login with the token, and CSRF on every change.

- Logging in takes the console token (console.token, else the deploy token), typed into the
  login form or carried by a one-time link from `rosey console` (runtime/web/links.py).
- A session is a random id in an HttpOnly, SameSite=Strict cookie (Secure when
  console.secure_cookie is set), kept in this process only: a restart logs everyone out.
- Every POST carries the session's CSRF token (a hidden form field or an X-CSRF-Token header),
  and its Origin, when the browser sends one, must be this host.
- Without a session only the login page and the static files answer; pages redirect to the
  login page, the JSON API and the live feed answer 401.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from aiohttp import web

log = logging.getLogger("rosey.console")

COOKIE = "rosey_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE = ("GET", "HEAD", "OPTIONS")  # methods that change nothing
# Paths anyone may fetch: the login page and its link, the static files, and the operations
# endpoints that were public before the console (probes cannot log in).
PUBLIC = ("/login", "/login/link", "/static/", "/healthz", "/readyz", "/metrics")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_KEY = web.RequestKey("session", object)


@dataclass
class Session:
    """One logged-in browser."""

    id: str
    csrf: str
    expires: float
    address: str = ""  # where the login came from, for the deploy journal
    flash: list[str] = field(default_factory=list)  # messages for the next page shown


class Sessions:
    """The sessions of one console, in memory, each for `lifetime` seconds."""

    def __init__(self, lifetime: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime, self.clock = lifetime, clock
        self.live: dict[str, Session] = {}

    def create(self, address: str = "") -> Session:
        self._expire()
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock() + self.lifetime
        )
        session.address = address
        self.live[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self.live.get(session_id or "")
        if session is None or session.expires < self.clock():
            return None
        return session

    def drop(self, session_id: str) -> None:
        self.live.pop(session_id, None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, s in self.live.items() if s.expires < now]:
            del self.live[key]


def public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site. Behind a reverse proxy
    the Host header must be passed on (the Origin's host is compared with it)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not every client sends it; the CSRF token still has to match
    return urlsplit(origin).netloc.lower() == request.host.lower()


class Gate:
    """The console's aiohttp middleware: a session for everything not public, CSRF for POSTs."""

    def __init__(self, sessions: Sessions, secure: bool = False) -> None:
        self.sessions, self.secure = sessions, secure

    def session_of(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE and not same_origin(request):
            log.warning("refused a %s %s from another origin", request.method, request.path)
            raise web.HTTPForbidden(text="cross-origin request refused")
        if public(request.path):
            return await handler(request)
        session = self.session_of(request)
        if session is None:
            if request.path.startswith("/api/") or request.path.endswith("/feed"):
                raise web.HTTPUnauthorized(
                    text="log in first", headers={"WWW-Authenticate": "Cookie"}
                )
            back = "" if request.path == "/" else "?next=" + quote(request.path_qs, safe="/")
            raise web.HTTPFound("/login" + back)
        if request.method not in SAFE:
            await self.check_csrf(request, session)
        request[SESSION_KEY] = session
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def check_csrf(self, request: web.Request, session: Session) -> None:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.post()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            log.warning("refused a %s %s with a wrong CSRF token", request.method, request.path)
            raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page")

    def open(self, response: web.StreamResponse, session: Session) -> None:
        """Give the browser its session cookie."""
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(self.sessions.lifetime),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )

    def close(self, request: web.Request, response: web.StreamResponse) -> None:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.sessions.drop(session_id)
        response.del_cookie(COOKIE, path="/")


def session(request: web.Request) -> Session:
    """The request's session (the Gate let it through)."""
    found = request.get(SESSION_KEY)
    assert isinstance(found, Session), "Gate.middleware first"
    return found


def token_matches(given: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())
