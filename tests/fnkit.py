"""Calling function handlers without NATS: an in-memory ctx.db with the DatabaseClient's API."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from runtime.database.store import Page
from tests.clitools import ROOT


class FakeDb:
    """get/set/update/query/delete/count over dicts, as the sync ctx.db of a worker thread."""

    def __init__(self) -> None:
        self.data: dict[str, dict[Any, dict[str, Any]]] = {}
        self.seq = 0

    def _coll(self, name: str) -> dict[Any, dict[str, Any]]:
        return self.data.setdefault(name, {})

    def get(self, collection: str, rid: Any) -> dict[str, Any] | None:
        record = self._coll(collection).get(rid)
        return {**record, "id": rid} if record is not None else None

    def set(self, collection: str, rid: Any, data: Mapping[str, Any]) -> Any:
        if rid is None:
            self.seq += 1
            rid = self.seq
        self._coll(collection)[rid] = dict(data)
        return rid

    def update(self, collection: str, rid: Any, data: Any = None, inc: Any = None) -> Any:
        record = self._coll(collection).get(rid)
        if record is None:
            return None
        record.update(data or {})
        for k, v in (inc or {}).items():
            record[k] = record.get(k, 0) + v
        return self.get(collection, rid)

    def delete(self, collection: str, rid: Any) -> bool:
        return self._coll(collection).pop(rid, None) is not None

    def _match(self, record: dict[str, Any], filter: Mapping[str, Any] | None) -> bool:
        for field, cond in (filter or {}).items():
            value = record.get(field)
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, operand in ops.items():
                if op == "$eq":
                    ok = value == operand
                elif op == "$lte":
                    ok = value is not None and value <= operand
                else:  # $contains
                    ok = isinstance(value, str | list) and operand in value
                if not ok:
                    return False
        return True

    def query(
        self,
        collection: str,
        filter: Any = None,
        order_by: Any = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        records = [self.get(collection, rid) for rid in self._coll(collection)]
        found = [r for r in records if r is not None and self._match(r, filter)]
        if order_by:
            field, _, direction = str(order_by).partition(" ")
            found.sort(key=lambda r: r.get(field, 0), reverse=direction.upper() == "DESC")
        return Page(found[offset : offset + limit], len(found))

    def count(self, collection: str, filter: Any = None) -> int:
        return self.query(collection, filter, limit=10**9).count


class FakeCtx(SimpleNamespace):
    """A SyncContext stand-in: config, db, and what the handler sent or asked to listen."""

    def __init__(
        self, config: Mapping[str, Any] | None = None, db: FakeDb | None = None, **kw: Any
    ) -> None:
        super().__init__(
            config=dict(config or {}), db=db or FakeDb(), log=logging.getLogger("test"), **kw
        )
        self.sent: list[tuple[str, str | None]] = []
        self.listening: float | None = None

    def send_chat(self, text: str, channel: str | None = None) -> None:
        self.sent.append((text, channel))

    def listen(self, seconds: float) -> float:
        self.listening = seconds
        return seconds

    def stop_listening(self) -> None:
        self.listening = None


def ev(
    *args: str,
    user: str = "amy",
    rank: float = 0,
    kind: str = "command",
    channel: str | None = "test",
    text: str | None = None,
) -> SimpleNamespace:
    raw = text if text is not None else " ".join(args)
    return SimpleNamespace(
        args=tuple(args),
        user=user,
        rank=rank,
        kind=kind,
        channel=channel,
        raw_message=raw,
        text=" ".join(args),
    )


def library(*names: str) -> tuple[dict[str, str], dict[str, str]]:
    """The repository's manifests of `names` and all function files."""
    manifests = {n: (ROOT / "manifests" / f"{n}.yaml").read_text() for n in names}
    code = {
        str(p.relative_to(ROOT / "functions")): p.read_text()
        for p in (ROOT / "functions").rglob("*.py")
    }
    return manifests, code
