"""The runtime side of deploys: authorised requests on NATS, the swap, and convergence of peers."""

from __future__ import annotations

import hmac
import logging
import os
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from runtime.config.manifest import Function, Manifest, display_path
from runtime.constants import DEPLOY, DEPLOY_APPLY, DEPLOY_QUEUE, STATUS, ErrorCode
from runtime.core import bundle
from runtime.core.bundle import Bundle
from runtime.core.runtime import Runtime, SwapReport
from runtime.deploy.versions import Versions
from runtime.errors import ContractError, DeployError, RoseyError
from runtime.legacy import plugin as legacy
from runtime.legacy.host import LegacyPlugins
from runtime.wire import contract
from runtime.wire.bus import Binding, Bindings, Bus
from runtime.wire.signing import Signer

log = logging.getLogger("rosey.deploy")


class DeployService:
    """Answers `rosey.deploy` (one runtime per deploy, in a queue group), applies peers' deploys
    announced on `rosey.deploy.apply`, and reports status on `rosey.status`."""

    def __init__(
        self,
        runtime: Runtime,
        bus: Bus,
        token: str,
        versions: Versions | None = None,
        ack_window: float = 0.3,
        plugins: LegacyPlugins | None = None,
    ) -> None:
        self.runtime, self.bus, self.token, self.versions = runtime, bus, token, versions
        self.ack_window, self.plugins = ack_window, plugins
        self.hashes: dict[str, str] = {}  # bundle hash of what each function serves here
        self.signer = Signer(token)
        # Deployment generations (Redis INCR): what this runtime started with, and the last one
        # it applied per function. An announcement not newer than these is refused (a replay).
        self.baseline = 0
        self.applied: dict[str, int] = {}
        self.id = uuid.uuid4().hex[:12]
        self.bindings = Bindings(
            [
                Binding(bus, DEPLOY, self.on_deploy, DEPLOY_QUEUE),
                Binding(bus, DEPLOY_APPLY, self.on_apply),
                Binding(bus, STATUS, self.on_status),
            ]
        )

    async def start(self) -> None:
        if self.versions is not None:
            self.baseline = await self.versions.generation()
        await self.bindings.start()

    async def stop(self) -> None:
        await self.bindings.stop(self.runtime.settings.drain_timeout)

    async def deployed(self) -> tuple[list[Bundle], set[str]]:
        """What earlier deploys left in Redis, for the runtime to start with."""
        if self.versions is None:
            return [], set()
        return list((await self.versions.current()).values()), await self.versions.removed()

    def choose(
        self,
        on_disk: Sequence[Function | Manifest],
        deployed: Sequence[Bundle] = (),
        removed: Collection[str] = (),
    ) -> list[tuple[Function, Path]]:
        """What the runtime starts with: deployed bundles take the place of the manifests of the
        same name on disk, and `removed` names are not served at all. Records their hashes.

        `on_disk` as `manifest.read_dir` gives it (each file read once: its text is what the
        hash covers), or as Functions, whose files are then read again for their hashes."""
        settings = self.runtime.settings
        read = {m.function.name: m for m in on_disk if isinstance(m, Manifest)}
        functions = [m.function if isinstance(m, Manifest) else m for m in on_disk]
        _warn_missing(settings.functions_dir, settings.manifests_dir, functions)
        chosen = {f.name: (f, settings.functions_dir) for f in functions if f.name not in removed}
        self.hashes = {
            f.name: _disk_hash(f, folder, read.get(f.name)) for f, folder in chosen.values()
        }
        for name in sorted({f.name for f in functions} & set(removed)):
            log.warning(
                "%s is on disk but was removed with `rosey remove`: not served "
                "(`rosey deploy` or `rosey rollback` serves it again)",
                name,
            )
        usable: set[str] = set()
        by_name = {f.name: f for f in functions}
        for shipped in deployed:
            try:
                chosen[shipped.name] = (shipped.function(), shipped.materialize(self.bundle_root))
                usable.add(shipped.name)
            except RoseyError as e:
                log.error(
                    "deployed %s %s is unusable here, serving the one on disk: %s",
                    shipped.name,
                    shipped.version,
                    e,
                )
                continue
            disk = by_name.get(shipped.name)
            on_disk_hash = self.hashes.get(shipped.name)  # "" when it cannot be built
            if disk is not None and on_disk_hash and on_disk_hash != shipped.hash:
                log.warning(
                    "%s: serving the deployed %s (from Redis), not the different %s on disk; "
                    "`rosey deploy` it to serve the one on disk",
                    shipped.name,
                    shipped.version,
                    disk.version,
                )
        self.hashes.update({b.name: b.hash for b in deployed if b.name in usable})
        return list(chosen.values())

    def record(self, hashes: Mapping[str, str]) -> None:
        """Note the hashes of what started beside the runtime (legacy plugins from disk)."""
        self.hashes.update(hashes)

    @property
    def bundle_root(self) -> Path:
        return self.runtime.bundle_root

    # rosey.deploy: one runtime handles each request and tells the others.

    async def on_deploy(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
            if not hmac.compare_digest(str(payload.get("token", "")).encode(), self.token.encode()):
                await self.bus.respond(
                    msg, contract.failure(ErrorCode.PERMISSION_DENIED, "deploy token rejected")
                )
                log.warning("refused a deploy with a wrong token")
                return
            reply = await self._act(payload)
        except ContractError as e:
            reply = contract.failure(ErrorCode.INVALID_INPUT, str(e))
        except RoseyError as e:
            log.warning("deploy failed: %s", e)
            reply = contract.failure(e.code, str(e))
        await self.bus.respond(msg, reply)

    async def _act(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload["action"]
        if action == "remove":
            name = payload["name"]
            if name not in self.runtime.registry:
                return await self._not_served(name)
            report = await self._remove(name)
            self.hashes.pop(name, None)
            if self.versions:
                await self.versions.remove(name)
            peers = await self._announce({"action": "remove", "name": name})
            return contract.ok({"report": asdict(report), "status": "removed", "peers": peers})
        if action == "rollback":
            if self.versions is None:
                raise DeployError(
                    payload["name"], "rollback needs Redis, which this runtime has not"
                )
            bundle = await self.versions.find(payload["name"], payload.get("version"))
        else:
            bundle = Bundle.from_json(payload["bundle"])
            if self.hashes.get(bundle.name) == bundle.hash and not payload.get("force"):
                return contract.ok(
                    {
                        "status": "unchanged",
                        "name": bundle.name,
                        "version": bundle.version,
                        "peers": [],
                    }
                )
        report = await self._swap(bundle)
        if self.versions:
            await self.versions.save(bundle)
        peers = await self._announce({"action": "apply", "name": bundle.name, "hash": bundle.hash})
        return contract.ok({"report": asdict(report), "status": "swapped", "peers": peers})

    async def _not_served(self, name: str) -> dict[str, Any]:
        """The answer to removing a function this runtime does not serve: nothing changed."""
        removed = await self.versions.removed() if self.versions else set()
        why = "it was removed already" if name in removed else "no function has that name"
        return contract.failure(
            ErrorCode.RECORD_NOT_FOUND,
            f"{name} is not served ({why}); nothing changed (`rosey ls` lists what is served)",
        )

    async def _swap(self, bundle: Bundle) -> Any:
        function = bundle.function()
        folder = bundle.materialize(self.runtime.bundle_root)
        if legacy.is_legacy(bundle):  # a legacy plugin package: its instance is swapped too
            if self.plugins is None:
                raise DeployError(bundle.name, "this runtime does not run legacy plugins")
            report = await self.plugins.swap(function, folder)
        else:
            report = await self.runtime.swap(function, folder)
        self.hashes[bundle.name] = bundle.hash
        log.info(
            "%s %s → %s in %.1f ms (%d drained)",
            bundle.name,
            report.old_version,
            report.new_version,
            report.swap_ms,
            report.drained,
        )
        return report

    async def _remove(self, name: str) -> SwapReport:
        # A legacy plugin's instance is stopped too; LegacyPlugins.remove also unroutes functions.
        if self.plugins is not None:
            return await self.plugins.remove(name)
        return await self.runtime.remove(name)

    async def _announce(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Tell every other runtime; collect their answers while they keep coming (peers answer
        after their own swap)."""
        # Without Redis there is no shared counter (and no peer could load the bundle); the
        # clock in nanoseconds still orders this runtime's own announcements.
        generation = await self.versions.next_generation() if self.versions else time.time_ns()
        self.applied[payload["name"]] = generation
        announce = self.signer.sign({**payload, "origin": self.id, "generation": generation})
        return await self.bus.gather(DEPLOY_APPLY, announce, self.ack_window, extend=True)

    # rosey.deploy.apply: another runtime deployed; converge on what it stored.

    async def on_apply(self, msg: Msg) -> None:
        try:
            payload = contract.decode(msg.subject, msg.data)
        except ContractError as e:
            log.warning("ignored a malformed deploy announcement: %s", e)
            return
        if payload.get("origin") == self.id:
            return
        ack: dict[str, Any] = {"runtime": self.id, "pid": os.getpid(), "ok": True}
        # Peers act on an announcement only when it is signed with the shared deploy token, fresh,
        # not seen before and newer than what they applied: a NATS client without the token can
        # neither forge one nor replay a captured one to bring back an old version.
        name, generation = payload["name"], payload["generation"]
        problem = self.signer.problem(payload)
        if problem is None and generation <= max(self.baseline, self.applied.get(name, 0)):
            problem = f"generation {generation} is not newer than the one applied here (a replay)"
        if problem is not None:
            log.warning("refused a deploy announcement for %s: %s", name, problem)
            await self.bus.respond(msg, {**ack, "ok": False, "error": f"refused: {problem}"})
            return
        self.applied[name] = generation
        try:
            if payload["action"] == "remove":
                if payload["name"] in self.runtime.registry:
                    await self._remove(payload["name"])
                self.hashes.pop(payload["name"], None)
            elif self.hashes.get(payload["name"]) != payload["hash"]:
                if self.versions is None:
                    raise DeployError(payload["name"], "this runtime has no Redis to load it from")
                bundle = await self.versions.find(payload["name"], hash=payload["hash"])
                report = await self._swap(bundle)
                ack["version"] = report.new_version
        except RoseyError as e:
            log.error("could not apply a peer's deploy: %s", e)
            ack.update(ok=False, error=str(e))
        await self.bus.respond(msg, ack)

    # rosey.status: what this runtime serves.

    async def on_status(self, msg: Msg) -> None:
        await self.bus.respond(msg, contract.ok(self.status()))

    def status(self) -> dict[str, Any]:
        functions = []
        for f in self.runtime.registry:
            invoker = self.runtime.invokers.get(f.name)
            stats = asdict(invoker.stats) if invoker else {}
            functions.append(
                {
                    "name": f.name,
                    "version": f.version,
                    "hash": self.hashes.get(f.name),
                    "external": f.external,
                    "commands": {c.name: c.rank for c in f.commands.values()},
                    "subjects": [s.subject for s in f.subjects],
                    "collections": list(f.collections),
                    "actions": list(f.actions),
                    "in_flight": invoker.in_flight if invoker else 0,
                    "status": "external"
                    if f.external
                    else ("paused" if invoker and invoker.breaker.paused else "serving"),
                    "restarts": getattr(invoker.code, "restarts", 0) if invoker else 0,
                    **stats,
                }
            )
        return {"runtime": self.id, "pid": os.getpid(), "functions": functions}


def _warn_missing(functions_dir: Path, manifests_dir: Path, on_disk: Sequence[Function]) -> None:
    """Say so when the folders functions are read from are missing or hold none."""
    for folder, key in ((functions_dir, "functions_dir"), (manifests_dir, "manifests_dir")):
        if not folder.is_dir():
            log.warning(
                "no %s folder %s (%s): no function on disk is served; run Rosey from your "
                "project folder or set %s in rosey.yaml",
                folder.name,
                display_path(folder),
                key,
                key,
            )
            return
    if not on_disk:
        log.warning(
            "%s holds no manifests: no function on disk is served", display_path(manifests_dir)
        )


def _disk_hash(function: Function, folder: Path, read: Manifest | None = None) -> str:
    path = Path(function.source)
    if not path.exists():
        return ""
    try:
        return bundle.build(path, folder, read).hash
    except (RoseyError, OSError):
        return ""
