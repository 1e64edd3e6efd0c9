"""HTML from the packaged Jinja2 templates (runtime/web/templates), escaped by default."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from runtime import __version__
from runtime.web.auth import SESSION_KEY, Session

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(seconds: float | None) -> str:
    """A record's time as the browser's reader expects it (UTC, to the second)."""
    if not seconds:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + " UTC"


def number(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:g}{unit}"


class Renderer:
    """Renders pages with what every page needs: the session's CSRF token and its messages."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, number=number)

    def page(
        self, request: web.Request, name: str, status: int = 200, **context: Any
    ) -> web.Response:
        session = request.get(SESSION_KEY)
        extra: dict[str, Any] = {"path": request.path, "csrf": "", "flash": []}
        if isinstance(session, Session):
            extra.update(csrf=session.csrf, flash=list(session.flash))
            session.flash.clear()
        template = self.env.get_template(name)
        body = template.render(version=__version__, channel=self.channel, **{**extra, **context})
        return web.Response(
            text=body,
            status=status,
            content_type="text/html",
            headers={
                # Nothing from elsewhere: no CDN, no inline handlers, no framing.
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",  # no-referrer would make Origin "null"
            },
        )
