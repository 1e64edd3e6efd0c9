"""What the console changes: rollback and enable, authorised on the server as `rosey rollback`
and `rosey enable` are.

A rollback is the very `rosey.deploy` request `rosey rollback` sends, with the deploy token in
force, so the runtime that takes it checks the token and swaps, stores and announces it to every
other runtime as for the command. Enable is `EnableService.everywhere`, what `!rosey enable`
runs: resumed here, and in every other runtime by a `rosey.enable` signed with the deploy token.
The Gate (runtime/web/auth.py) has checked the session and the CSRF token before either runs."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from runtime.constants import DEPLOY
from runtime.errors import RoseyError
from runtime.web.auth import session
from runtime.web.journal import Journal
from runtime.web.model import Sources

log = logging.getLogger("rosey.console")

DEPLOY_TIMEOUT = 60.0  # as `rosey rollback` waits


def describe(name: str, reply: dict[str, Any]) -> str:
    """One line for the page: what the rollback did, or why it did not."""
    if not reply.get("success"):
        return (
            f"{name}: NOT rolled back ({reply.get('error_code')}): {reply.get('error')}; "
            "the old version keeps serving"
        )
    data = reply.get("data") or {}
    report = data.get("report") or {}
    failed = [p for p in data.get("peers", []) if not p.get("ok")]
    line = (
        f"{name}: {report.get('old_version') or '(not served)'} → {report.get('new_version')}; "
        f"{len(data.get('peers', [])) + 1} runtime(s)"
    )
    if failed:
        line += "; NOT applied on " + ", ".join(f"{p['runtime']}: {p.get('error')}" for p in failed)
    return line


class Actions:
    """POST /functions/{name}/rollback (form field `version`, empty: the previous one) and
    POST /functions/{name}/enable. Answers JSON to a client that asks for it, else redirects
    to the function's page with the outcome as its message."""

    def __init__(self, sources: Sources, journal: Journal) -> None:
        self.sources, self.journal = sources, journal

    def install(self, app: web.Application) -> None:
        app.router.add_post("/functions/{name}/rollback", self.rollback)
        app.router.add_post("/functions/{name}/enable", self.enable)

    async def rollback(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        version = str(form.get("version") or "").strip() or None
        by = f"console ({request.remote})"
        self.journal.claim(name, by, "rollback")
        request_ = {"token": self.sources.token, "action": "rollback", "name": name}
        try:
            reply = await self.sources.bus.request(
                DEPLOY, {**request_, "version": version}, DEPLOY_TIMEOUT
            )
        except RoseyError as e:
            reply = {"success": False, "error_code": e.code, "error": str(e)}
        if not reply.get("success"):
            self.journal.unclaim(name)
        line = describe(name, reply)
        log.warning("console: rollback of %s by %s: %s", name, by, line)
        return self._answer(request, name, bool(reply.get("success")), line, reply)

    async def enable(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            answers = await self.sources.enable.everywhere(name)
        except RoseyError as e:
            return self._answer(request, name, False, f"{name}: could not resume: {e}", {})
        if not answers:
            return self._answer(request, name, False, f"no running runtime serves {name}", {})
        resumed = sum(1 for a in answers if a.get("resumed"))
        line = f"{name}: resumed on {resumed} of {len(answers)} runtime(s)"
        log.warning("console: enable %s by %s: %s", name, request.remote, line)
        return self._answer(request, name, True, line, {"answers": answers})

    def _answer(
        self, request: web.Request, name: str, ok: bool, line: str, data: dict[str, Any]
    ) -> web.Response:
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response({"ok": ok, "message": line, **data}, status=200 if ok else 409)
        session(request).flash.append(line)
        raise web.HTTPSeeOther(f"/functions/{name}")
