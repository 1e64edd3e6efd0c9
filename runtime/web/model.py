"""What the console shows, as plain data (the JSON API serves it as is; templates render it):
functions with their last hour of activation records, one function in detail, the channel, and
the runtimes that are up."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.config.keys import Namespace
from runtime.config.settings import Settings
from runtime.constants import CHANNEL_STATE, STATUS
from runtime.core.permissions import rank_name
from runtime.core.runtime import Runtime
from runtime.deploy.service import DeployService
from runtime.deploy.versions import Versions
from runtime.errors import RoseyError, StoreError
from runtime.legacy.host import LegacyPlugins
from runtime.ops.enable import EnableService
from runtime.ops.metrics import RAN
from runtime.ops.operations import Operations
from runtime.ops.records import ActivationLog
from runtime.web.journal import Journal
from runtime.wire.bus import Bus

log = logging.getLogger("rosey.console")

HOUR = 3600.0
SCAN = 5_000  # activation records read at most for the last hour's numbers
ERRORS = frozenset({"error", "timeout"})
NOT_INVOKED = frozenset({"denied", "cooldown"})  # the router or invoker said no before running


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile of `values` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def hour_stats(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per function: invocations, errors, p50/p99 latency (ms) and the last error."""
    found: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}
    for r in records:  # newest first
        stats = found.setdefault(
            r["function"], {"invocations": 0, "errors": 0, "denied": 0, "last_error": ""}
        )
        if r["outcome"] in NOT_INVOKED:
            stats["denied"] += 1
            continue
        stats["invocations"] += 1
        if r["outcome"] in ERRORS:
            stats["errors"] += 1
            stats["last_error"] = stats["last_error"] or r["error"] or r["outcome"]
        if r["outcome"] in RAN:
            durations.setdefault(r["function"], []).append(r["duration"])
    for name, stats in found.items():
        values = durations.get(name, [])
        stats["p50_ms"] = ms(percentile(values, 0.5))
        stats["p99_ms"] = ms(percentile(values, 0.99))
    return found


def per_minute(records: Iterable[dict[str, Any]], now: float, minutes: int = 30) -> list[int]:
    """Commands handled in each of the last `minutes` minutes, oldest first."""
    counts = [0] * minutes
    for r in records:
        if r["outcome"] in NOT_INVOKED:
            continue
        age = int((now - r["time"]) // 60)
        if 0 <= age < minutes:
            counts[minutes - 1 - age] += 1
    return counts


@dataclass
class Sources:
    """The collaborators of a console: the runtime it runs in and what `rosey run` built beside
    it. `token` is the deploy token in force (configured or generated), which authorises
    rollbacks as `rosey rollback` does."""

    settings: Settings
    bus: Bus
    runtime: Runtime
    deploy: DeployService
    enable: EnableService
    token: str
    redis: Redis | None = None
    keys: Namespace | None = None
    versions: Versions | None = None
    operations: Operations | None = None
    plugins: LegacyPlugins | None = None

    @property
    def activations(self) -> ActivationLog | None:
        return self.operations.activations if self.operations is not None else None


class Model:
    """Reads what the console shows from its Sources and the deploy journal."""

    def __init__(self, sources: Sources, journal: Journal) -> None:
        self.c, self.journal = sources, journal
        self._read: tuple[str, list[dict[str, Any]]] = ("", [])  # (newest entry, records)

    async def recent(self, seconds: float = HOUR) -> list[dict[str, Any]]:
        """Activation records of every runtime from the last `seconds`, newest first. Read again
        only when the stream has a newer entry: every open page refreshes on every record."""
        records = self.c.activations
        if records is None:
            return []
        try:
            await records.flush()  # what this process just did is included
            newest: Any = await records.redis.xrevrange(records.stream, count=1)
            entry = str(newest[0][0]) if newest else ""
            if entry != self._read[0] or not entry:
                self._read = (entry, await records.query(limit=SCAN))
        except (StoreError, RedisError, OSError) as e:
            log.warning("console: activation records not read: %s", e)
        since = time.time() - seconds
        return [r for r in self._read[1] if r["time"] >= since]

    def kind(self, name: str, external: bool) -> str:
        plugins = self.c.plugins
        if plugins is not None and name in plugins.running:
            return "legacy plugin"
        return "external" if external else "function"

    def isolation(self, name: str) -> str:
        invoker = self.c.runtime.invokers.get(name)
        if invoker is None:
            return "—"
        return invoker.function.isolation or self.c.settings.isolation.default

    async def functions(self) -> list[dict[str, Any]]:
        """Every function this runtime routes to, with the last hour's numbers."""
        stats = hour_stats(await self.recent())
        rows = []
        for f in self.c.deploy.status()["functions"]:
            name = f["name"]
            hour = stats.get(name, {"invocations": 0, "errors": 0, "denied": 0, "last_error": ""})
            invoker = self.c.runtime.invokers.get(name)
            paused = f["status"] == "paused"
            reason = ""
            if paused and invoker is not None:
                spec = invoker.function
                reason = (
                    f"{spec.quarantine_failures} failures within {spec.quarantine_window:g}s"
                    + (f"; last: {hour['last_error']}" if hour["last_error"] else "")
                )
            rows.append(
                {
                    "name": name,
                    "version": f["version"],
                    "hash": f["hash"],
                    "kind": self.kind(name, f["external"]),
                    "isolation": self.isolation(name) if not f["external"] else "own process",
                    "commands": [
                        {"name": c, "rank": r, "rank_name": rank_name(r)}
                        for c, r in f["commands"].items()
                    ],
                    "subjects": f["subjects"],
                    "state": "quarantined" if paused else "serving",
                    "reason": reason,
                    "in_flight": f["in_flight"],
                    "invocations": hour["invocations"],
                    "errors": hour["errors"],
                    "denied": hour["denied"],
                    "p50_ms": hour.get("p50_ms"),
                    "p99_ms": hour.get("p99_ms"),
                }
            )
        return sorted(rows, key=lambda row: row["name"])

    async def function(self, name: str, user: str | None, count: int) -> dict[str, Any] | None:
        """One function: its row, manifest, kept versions (with who and when from the deploy
        journal) and recent activation records, filtered as `rosey logs` filters them."""
        row = next((r for r in await self.functions() if r["name"] == name), None)
        if row is None:
            return None
        kept = await self.c.versions.history(name) if self.c.versions is not None else []
        deployed = await self.journal.by_hash(name)
        current = self.c.deploy.hashes.get(name)
        versions = [
            {
                "version": b.version,
                "hash": b.hash,
                "current": b.hash == current,
                "by": deployed.get(b.hash, {}).get("by", ""),
                "time": deployed.get(b.hash, {}).get("time"),
            }
            for b in kept
        ]
        manifest = next((b.manifest for b in kept if b.hash == current), None)
        if manifest is None:
            manifest = self.manifest_on_disk(name)
        records: list[dict[str, Any]] = []
        if self.c.activations is not None and count:
            records = await self.c.activations.query(function=name, user=user, limit=count)
        return {**row, "manifest": manifest, "versions": versions, "records": records}

    def manifest_on_disk(self, name: str) -> str:
        invoker = self.c.runtime.invokers.get(name)
        source = invoker.function.source if invoker is not None else ""
        with contextlib.suppress(OSError, ValueError):
            if source and Path(source).is_file():
                return Path(source).read_text()
        return ""

    async def channel(self) -> dict[str, Any]:
        """The connector's state and its view of the channel (`cytube.state`), when it answers."""
        c = self.c
        watch = c.operations.watch if c.operations is not None else None
        probe = c.operations.probes.cytube_state if c.operations is not None else None
        state = probe() if probe else (watch.state if watch else "")
        cytube = c.settings.cytube
        data: dict[str, Any] = {
            "channel": cytube.channel if cytube else c.settings.channel,
            "server": cytube.url if cytube else "",
            "connector": state or ("console chat" if cytube is None else "unknown"),
            "reason": watch.reason if watch else "",
            "view": None,
            "problem": "",
        }
        try:
            reply = await c.bus.request(CHANNEL_STATE, {"what": "all"}, timeout=1.0)
        except RoseyError as e:
            data["problem"] = f"no channel connector answered: {e}"
            return data
        if isinstance(reply, dict) and reply.get("success"):
            data["view"] = reply.get("data")
        else:
            data["problem"] = str((reply or {}).get("error", "the connector refused"))
        return data

    async def runtimes(self, window: float = 0.3) -> list[dict[str, Any]]:
        """Every runtime that answers `rosey.status` within `window` seconds."""
        try:
            replies = await self.c.bus.gather(STATUS, {}, window)
        except RoseyError:
            return []
        found = []
        for reply in replies:
            data = reply.get("data") if reply.get("success") else None
            if isinstance(data, dict):
                functions = data.get("functions", [])
                found.append(
                    {
                        "runtime": data.get("runtime"),
                        "pid": data.get("pid"),
                        "this": data.get("runtime") == self.c.deploy.id,
                        "functions": len(functions),
                        "quarantined": [f["name"] for f in functions if f["status"] == "paused"],
                    }
                )
        return sorted(found, key=lambda r: (not r["this"], str(r["runtime"])))
