"""Activation records in a capped Redis stream: buffered off the hot path, read by `!why` and
`rosey logs`.

Records are packed: one stream entry holds up to `entry_size` records of one write, as a JSON array of
rows in its field `records` (a row is the Activation's values in ROW order), so a busy runtime
writes one XADD per batch instead of one 12-field XADD per record, and the writer lets records
gather for LINGER seconds first. Entries of the older format (one record, one field per value)
are still read. A packed record's `entry` is `<stream id>/<index in the entry>`.

The cap: MAXLEN counts entries, not records, so each XADD asks for MAXLEN ~ max_records divided
by the records per entry this writer has been writing lately (a moving average). With batches of
similar size the stream keeps about max_records records; `entry_size` is at most a twentieth of
max_records, so one entry is never a big share of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config.keys import Namespace
from runtime.config.settings import ActivationSettings
from runtime.constants import ErrorCode
from runtime.core.activation import Activation
from runtime.errors import StoreError
from runtime.tasks import halt
from runtime.wire import contract

log = logging.getLogger("rosey.activations")

QUERY = "rosey.activations.query"  # served by every runtime, in a queue group
QUERY_QUEUE = "rosey.activations"
FIELDS = ("id", "function", "version", "kind", "command", "user", "channel", "outcome")
# A packed row: these values, in this order (a newer Rosey may add some at the end: ignored).
ROW = (*FIELDS, "duration", "error", "reason", "time")
PACKED = "records"  # the one field of a packed entry
BATCH = 500  # records a flush writes in one pipeline, and at most in one entry
LINGER = 0.025  # seconds the writer lets records gather, so that one XADD carries many
AVERAGING = 0.2  # weight of the newest entry in the moving average of records per entry
PAGE = 500  # records read per XREVRANGE, about (entries are sized by what the query saw)
FIRST_ENTRIES = 10  # entries the first XREVRANGE of a query reads
FOLLOW_ENTRIES = 20  # entries one XREAD of `follow` reads
MAX_SCAN = 5_000  # entries a query looks through at most: the newest are what !why is about
MAX_LIMIT = 100
TRIM_EVERY = 60.0  # seconds between retention trims
RETRY = 1.0  # seconds before writing again after Redis failed
STOP_FLUSH = 2.0  # seconds stop() gives the last records


_ENCODER = msgspec.json.Encoder()


def pack(batch: Sequence[Activation]) -> bytes:
    """Records as the `records` field of one stream entry: a JSON array of ROW arrays."""
    return _ENCODER.encode(
        [
            (
                a.id,
                a.function,
                a.version,
                a.kind,
                a.command or None,
                a.user or None,
                a.channel or None,
                a.outcome,
                round(a.duration, 6),
                a.error,
                a.reason,
                round(a.time, 3),
            )
            for a in batch
        ]
    )


def unpack(entry: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """The records of one stream entry, oldest first: many from a packed entry, one from an
    entry of the older format; none from an entry that is neither (not written by Rosey)."""
    packed = fields.get(PACKED)
    if packed is None:
        return [decode(entry, fields)] if "id" in fields else []
    try:
        rows = msgspec.json.decode(packed)
    except msgspec.DecodeError:
        log.debug("stream entry %s is not a packed batch of records", entry)
        return []
    records = []
    for index, row in enumerate(rows if isinstance(rows, list) else ()):
        if isinstance(row, list) and len(row) >= len(ROW):
            record = dict(zip(ROW, row, strict=False))
            record["entry"] = f"{entry}/{index}"
            records.append(record)
    return records


def decode(entry: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """An entry of the older format (one record, a field per value) as a record: the
    Activation's fields, `entry` (the stream id), and None for empty command, user and channel."""
    record: dict[str, Any] = {name: fields.get(name, "") for name in FIELDS}
    for name in ("command", "user", "channel"):
        record[name] = record[name] or None
    record.update(
        duration=float(fields.get("duration") or 0),
        error=fields.get("error", ""),
        reason=fields.get("reason", ""),
        time=float(fields.get("time") or 0),
        entry=entry,
    )
    return record


def _matches(
    record: Mapping[str, Any],
    user: str | None,
    function: str | None,
    kind: str | None,
    exclude: Collection[str],
) -> bool:
    if user is not None and (record["user"] or "").lower() != user.lower():
        return False
    if function is not None and record["function"] != function:
        return False
    if kind is not None and record["kind"] != kind:
        return False
    return record["function"] not in exclude


class ActivationLog:
    """An activation observer that never blocks an invocation: records wait in a bounded buffer
    (the oldest dropped when full) and a background task writes them with XADD MAXLEN ~."""

    def __init__(
        self, redis: Redis, keys: Namespace, settings: ActivationSettings | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings or ActivationSettings()
        self.stream = keys.join(self.settings.stream)  # the key of the stream
        # Records per entry: at most BATCH, and at most a twentieth of the cap (see the top).
        self.entry_size = max(1, min(BATCH, self.settings.max_records // 20))
        self.per_entry = 1.0  # records per entry lately, for MAXLEN
        self.buffer: deque[Activation] = deque()
        self.written = 0
        self.dropped = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._trimmed = 0.0
        self._failing = False

    def __call__(self, activation: Activation) -> None:
        if len(self.buffer) >= self.settings.buffer:
            self.buffer.popleft()
            self.dropped += 1
        self.buffer.append(activation)
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rosey-activations")

    async def stop(self) -> None:
        """Stop the writer and give what is still buffered a short last chance."""
        task, self._task = self._task, None
        await halt(task)
        try:
            async with asyncio.timeout(STOP_FLUSH):
                await self.flush()
        except (TimeoutError, StoreError) as e:
            log.warning("%d activation records not written: %s", len(self.buffer), e)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self.buffer) < self.entry_size:
                await asyncio.sleep(LINGER)  # let more come: one XADD carries them all
            self._wake.clear()
            try:
                await self.flush()
            except StoreError as e:
                if not self._failing:  # once per outage, not once per record
                    log.warning("%s; keeping up to %d in memory", e, self.settings.buffer)
                self._failing = True
                await asyncio.sleep(RETRY)
                self._wake.set()
            else:
                if self._failing:
                    log.info("activation records are being written again")
                self._failing = False

    async def flush(self) -> int:
        """Write every buffered record now; returns how many. Raises StoreError."""
        count = 0
        async with self._lock:
            while self.buffer:
                batch = [self.buffer.popleft() for _ in range(min(BATCH, len(self.buffer)))]
                try:
                    await self._write(batch)
                except (RedisError, OSError) as e:
                    # Back to the front, in order; past the bound the oldest are dropped.
                    self.buffer.extendleft(reversed(batch))
                    while len(self.buffer) > self.settings.buffer:
                        self.buffer.popleft()
                        self.dropped += 1
                    raise StoreError("write activation records", str(e) or type(e).__name__) from e
                count += len(batch)
                self.written += len(batch)
        return count

    async def _write(self, batch: list[Activation]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(batch), self.entry_size):
                chunk = batch[start : start + self.entry_size]
                self.per_entry += (len(chunk) - self.per_entry) * AVERAGING
                pipe.xadd(
                    self.stream,
                    {PACKED: pack(chunk)},
                    maxlen=max(1, math.ceil(self.settings.max_records / self.per_entry)),
                    approximate=True,
                )
            now = time.time()
            if now - self._trimmed >= TRIM_EVERY:
                oldest = int((now - self.settings.retention) * 1000)
                pipe.xtrim(self.stream, minid=f"{max(oldest, 0)}-0", approximate=True)
                self._trimmed = now
            await pipe.execute()

    async def query(
        self,
        *,
        user: str | None = None,
        function: str | None = None,
        kind: str | None = None,
        exclude: Collection[str] = (),
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """The newest matching records, newest first (among the newest MAX_SCAN); user names
        match regardless of case. Raises StoreError."""
        with contextlib.suppress(StoreError):
            await self.flush()  # so that what this process just did is included
        found: list[dict[str, Any]] = []
        cursor, scanned, seen, count = "+", 0, 0, FIRST_ENTRIES
        try:
            while len(found) < limit and scanned < MAX_SCAN:
                entries: Any = await self.redis.xrevrange(
                    self.stream, max=cursor, min="-", count=count
                )
                for entry, fields in entries:
                    records = unpack(entry, fields)
                    scanned += len(records)
                    for record in reversed(records):
                        if _matches(record, user, function, kind, exclude):
                            found.append(record)
                seen += len(entries)
                if len(entries) < count:
                    break
                cursor = "(" + entries[-1][0]
                # About PAGE records a read, however many records the entries hold.
                count = max(1, min(PAGE, PAGE * seen // max(scanned, 1)))
        except (RedisError, OSError) as e:
            raise StoreError("read activation records", str(e) or type(e).__name__) from e
        return found[:limit]

    async def follow(
        self,
        function: str | None = None,
        user: str | None = None,
        after: str = "$",
        poll: float = 1.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Records written after the record `after` (a record's `entry`, or a stream id;
        default: from now on), oldest first."""
        last, _, index = after.partition("/")
        try:
            # The rest of a packed entry: the records written with `after`, after it.
            rest: Any = await self.redis.xrange(self.stream, min=last, max=last) if index else []
        except (RedisError, OSError) as e:
            raise StoreError("follow activation records", str(e) or type(e).__name__) from e
        for entry, fields in rest:
            for record in unpack(entry, fields)[int(index) + 1 if index.isdigit() else 0 :]:
                if _matches(record, user, function, None, ()):
                    yield record
        while True:
            try:
                answer: Any = await self.redis.xread(
                    {self.stream: last}, count=FOLLOW_ENTRIES, block=int(poll * 1000)
                )
            except (RedisError, OSError) as e:
                raise StoreError("follow activation records", str(e) or type(e).__name__) from e
            for _, entries in answer or []:
                for entry, fields in entries:
                    last = entry
                    for record in unpack(entry, fields):
                        if _matches(record, user, function, None, ()):
                            yield record

    async def answer(self, data: bytes) -> dict[str, Any]:
        """The reply to one `rosey.activations.query` request: `{user?, function?, kind?,
        exclude?: [function], limit?}` → `{records: [...]}`, newest first."""
        try:
            request = json.loads(data) if data else {}
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            for key in ("user", "function", "kind"):
                if request.get(key) is not None and not isinstance(request[key], str):
                    raise ValueError(f"{key}: expected a string")
            exclude = request.get("exclude") or []
            if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
                raise ValueError("exclude: expected a list of function names")
            limit = request.get("limit", 20)
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
                raise ValueError(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
        except ValueError as e:
            return contract.failure(ErrorCode.INVALID_INPUT, f"{QUERY}: {e}")
        try:
            records = await self.query(
                user=request.get("user"),
                function=request.get("function"),
                kind=request.get("kind"),
                exclude=exclude,
                limit=limit,
            )
        except StoreError as e:
            return contract.failure(ErrorCode.DATABASE_ERROR, str(e))
        return contract.ok({"records": records})
