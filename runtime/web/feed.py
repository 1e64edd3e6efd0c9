"""The live feed: activation records and deploys as server-sent events, to every open page.

One task follows the activation records stream (every runtime's records) and hands each record
to the queues of the connected browsers, only while one is connected (following costs a Redis
read per batch of records, which a runtime nobody watches should not pay); the deploy journal hands its entries in the same way.
A browser that cannot keep up loses its feed (its EventSource reconnects) rather than holding
records in memory without end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from runtime.errors import StoreError
from runtime.ops.records import ActivationLog
from runtime.tasks import halt

log = logging.getLogger("rosey.console")

QUEUE = 1_000  # events waiting for one browser
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle feed
RETRY_MS = 2_000  # how soon a browser reconnects
Event = tuple[str, dict[str, Any]] | None  # (event type, data); None ends the feed


class Hub:
    """Fans events out to the connected feeds."""

    def __init__(self, activations: ActivationLog | None) -> None:
        self.activations = activations
        self.queues: set[asyncio.Queue[Event]] = set()
        self.closed = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Nothing to do until a browser connects (`serve`)."""

    def _watched(self) -> None:
        if self.activations is not None and self._task is None and not self.closed:
            self._task = asyncio.create_task(self._follow(self.activations), name="console-feed")

    def _unwatched(self) -> None:
        if not self.queues and self._task is not None:
            self._task.cancel()  # the next browser starts following from its own now
            self._task = None

    async def stop(self) -> None:
        self.close()
        task, self._task = self._task, None
        await halt(task)

    def close(self) -> None:
        """End every feed (the server is stopping)."""
        self.closed = True
        for queue in list(self.queues):
            self._end(queue)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                log.warning("a console feed fell behind; it reconnects")
                self.queues.discard(queue)
                self._end(queue)

    def _end(self, queue: asyncio.Queue[Event]) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            while queue.full():
                queue.get_nowait()
        queue.put_nowait(None)

    async def _follow(self, activations: ActivationLog) -> None:
        while True:
            try:
                async for record in activations.follow():
                    self.publish("activation", record)
            except StoreError as e:
                log.warning("console feed: %s; retrying", e)
                await asyncio.sleep(1.0)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET: `text/event-stream` of `activation` and `deploy` events, JSON data."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass events on as they come
            }
        )
        await response.prepare(request)
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE)
        if self.closed:
            return response
        self.queues.add(queue)
        self._watched()
        try:
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE):
                        event = await queue.get()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:
                    break
                kind, data = event
                await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self.queues.discard(queue)
            self._unwatched()
        return response
