"""Signed control messages: authentic, fresh and used once.

Deploy announcements (`rosey.deploy.apply`) and resume requests (`rosey.enable`) travel on the bus,
where any client allowed to subscribe can capture them. A signature alone would let such a client
replay a captured message later: bring back an old version, drop a function again. So every
signed message also carries its issue time and a single-use part, and a receiver refuses:
- a signature not made with the shared deploy token,
- a message issued more than `window` seconds ago (or that far in the future: clocks differ),
- a message it has accepted before (its `nonce`), or, for deploy announcements, a deployment
  generation not newer than the last one it applied (see runtime/deploy/service.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

WINDOW = 30.0  # seconds a signed message stays acceptable


def signature(token: str, payload: Mapping[str, Any]) -> str:
    """HMAC-SHA256, keyed with `token`, of every field but `auth` as sorted, compact JSON."""
    body = json.dumps(
        {k: v for k, v in payload.items() if k != "auth"}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(token.encode(), body.encode(), hashlib.sha256).hexdigest()


class Signer:
    """Signs outgoing control messages and judges incoming ones, for one deploy token."""

    def __init__(
        self, token: str, window: float = WINDOW, clock: Callable[[], float] = time.time
    ) -> None:
        self.token, self.window, self.clock = token, window, clock
        self._seen: dict[str, float] = {}  # nonce → when it stops being acceptable anyway

    def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """`payload` with `issued`, a fresh `nonce` and `auth` added."""
        signed = {**payload, "issued": round(self.clock(), 3), "nonce": secrets.token_hex(12)}
        signed["auth"] = signature(self.token, signed)
        return signed

    def problem(self, payload: Mapping[str, Any]) -> str | None:
        """Why `payload` must be refused, or None when it is authentic, fresh and new. An
        accepted nonce is remembered for the window, so the same message is refused next time."""
        if not hmac.compare_digest(str(payload.get("auth", "")), signature(self.token, payload)):
            return "not signed with this runtime's deploy token"
        issued = payload.get("issued")
        now = self.clock()
        if not isinstance(issued, int | float) or not math.isfinite(issued):
            return "no issue time"
        if abs(now - issued) > self.window:
            return f"issued {now - issued:+.0f}s from now, outside the {self.window:g}s window"
        nonce = str(payload.get("nonce", ""))
        self._forget_expired(now)
        if not nonce or nonce in self._seen:
            return "already used (a replay)"
        self._seen[nonce] = now + 2 * self.window
        return None

    def _forget_expired(self, now: float) -> None:
        for nonce in [n for n, until in self._seen.items() if until < now]:
            del self._seen[nonce]
