"""One-time login links: `rosey console` prints a URL that logs in once, within a minute, without
showing the token.

The link carries a control message signed with the console's token (runtime/wire/signing.py):
its issue time, a single-use nonce and an HMAC. The console checks it as every runtime checks a
signed `rosey.enable`: made with the token, fresh, never seen before. Whoever reads the link in a
terminal's scrollback or a browser's history afterwards holds nothing usable."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from runtime.wire.signing import Signer

PURPOSE = "console-login"
LINK_WINDOW = 60.0  # seconds a login link stays usable
PATH = "/login/link"


def login_url(http: str, token: str) -> str:
    """The one-time login URL for the console at `http` (its base URL), signed with `token`."""
    signed = Signer(token).sign({"purpose": PURPOSE})
    query = {"issued": repr(signed["issued"]), "nonce": signed["nonce"], "auth": signed["auth"]}
    return f"{http.rstrip('/')}{PATH}?{urlencode(query)}"


class LinkChecker:
    """Judges login links for one console token; each link is accepted once."""

    def __init__(self, token: str, window: float = LINK_WINDOW) -> None:
        self.signer = Signer(token, window=window)

    def problem(self, query: Mapping[str, str]) -> str | None:
        """Why the link's query must be refused, or None: it logs in."""
        try:
            issued = float(query.get("issued", ""))
        except ValueError:
            return "the link is incomplete"
        payload = {
            "purpose": PURPOSE,
            "issued": issued,
            "nonce": query.get("nonce", ""),
            "auth": query.get("auth", ""),
        }
        return self.signer.problem(payload)
