"""The console's pages and their JSON: functions, one function, live activity, the channel, and
deploys with the runtimes that are up. Each page's data comes from runtime/web/model.py; the
same data is served as JSON under /api/."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from runtime.ops.records import MAX_LIMIT
from runtime.web import charts
from runtime.web.feed import Hub
from runtime.web.journal import Journal
from runtime.web.model import Model, per_minute
from runtime.web.render import Renderer

DEFAULT_LINES = 20  # as `rosey logs -n`


def filters(request: web.Request) -> tuple[str | None, int]:
    """`user` and `n` (0 to 100) from the query, as `rosey logs --user NAME -n N`."""
    user = request.query.get("user", "").strip() or None
    try:
        count = int(request.query.get("n", DEFAULT_LINES))
    except ValueError as e:
        raise web.HTTPBadRequest(text="n: expected a whole number from 0 to 100") from e
    if not 0 <= count <= MAX_LIMIT:
        raise web.HTTPBadRequest(text="n: expected a whole number from 0 to 100")
    return user, count


class Pages:
    """The read-only routes."""

    def __init__(self, model: Model, journal: Journal, hub: Hub, render: Renderer) -> None:
        self.model, self.journal, self.hub, self.render = model, journal, hub, render

    def install(self, app: web.Application) -> None:
        get = app.router.add_get
        get("/", self.functions)
        get("/functions/{name}", self.function)
        get("/activity", self.activity)
        get("/activity/feed", self.hub.serve)
        get("/channel", self.channel)
        get("/deploys", self.deploys)
        get("/api/functions", self.api_functions)
        get("/api/functions/{name}", self.api_function)
        get("/api/activity", self.api_activity)
        get("/api/channel", self.api_channel)
        get("/api/deploys", self.api_deploys)

    # Functions

    async def functions(self, request: web.Request) -> web.Response:
        rows = await self.model.functions()
        return self.render.page(request, "functions.html", functions=rows)

    async def api_functions(self, request: web.Request) -> web.Response:
        return web.json_response({"functions": await self.model.functions()})

    async def _function(self, request: web.Request) -> dict[str, Any]:
        name = request.match_info["name"]
        user, count = filters(request)
        found = await self.model.function(name, user, count)
        if found is None:
            raise web.HTTPNotFound(text=f"no function {name} is served here")
        return {**found, "filters": {"user": user or "", "n": count}}

    async def function(self, request: web.Request) -> web.Response:
        return self.render.page(request, "function.html", f=await self._function(request))

    async def api_function(self, request: web.Request) -> web.Response:
        return web.json_response(await self._function(request))

    # Activity

    async def _activity(self) -> dict[str, Any]:
        now = time.time()
        recent = await self.model.recent()
        rows = await self.model.functions()
        return {
            "per_minute": per_minute(recent, now),
            "latency": [
                {"name": r["name"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]} for r in rows
            ],
            "records": recent[:50],
        }

    async def activity(self, request: web.Request) -> web.Response:
        data = await self._activity()
        return self.render.page(
            request,
            "activity.html",
            records=data["records"],
            per_minute=charts.bars(data["per_minute"], "Commands per minute"),
            latency=charts.latency(
                [(r["name"], r["p50_ms"], r["p99_ms"]) for r in data["latency"]],
                "Latency over the last hour (p50 filled, p99 outlined)",
            ),
        )

    async def api_activity(self, request: web.Request) -> web.Response:
        user, count = filters(request)
        function = request.query.get("function") or None
        records = []
        if self.model.c.activations is not None and count:
            records = await self.model.c.activations.query(
                function=function, user=user, limit=count
            )
        data = await self._activity()
        return web.json_response({**data, "records": records})

    # Channel

    async def channel(self, request: web.Request) -> web.Response:
        return self.render.page(request, "channel.html", ch=await self.model.channel())

    async def api_channel(self, request: web.Request) -> web.Response:
        return web.json_response(await self.model.channel())

    # Deploys and runtimes

    async def _deploys(self) -> dict[str, Any]:
        return {"history": await self.journal.entries(), "runtimes": await self.model.runtimes()}

    async def deploys(self, request: web.Request) -> web.Response:
        return self.render.page(request, "deploys.html", **await self._deploys())

    async def api_deploys(self, request: web.Request) -> web.Response:
        return web.json_response(await self._deploys())
