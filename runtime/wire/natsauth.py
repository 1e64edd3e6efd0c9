"""NATS credentials and TLS: connect options from rosey.yaml, checked before connecting, and a
client that refuses to talk in the clear when TLS is configured."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import nkeys
from nats.aio.client import Client
from nats.errors import Error as NatsError

from runtime.config.settings import NatsSettings


def auth_options(auth: NatsSettings | None) -> dict[str, Any]:
    """nats-py connect options for the credentials configured in rosey.yaml.

    ValueError names the setting whose file cannot be used (the TLS files are read here)."""
    if auth is None:
        return {}
    options: dict[str, Any] = {}
    if auth.user:
        options.update(user=auth.user, password=auth.password)
    if auth.token:
        options["token"] = auth.token
    if auth.creds:
        options["user_credentials"] = str(auth.creds)
    if auth.nkey_seed:
        options["nkeys_seed_str"] = auth.nkey_seed
    if auth.tls_key and not auth.tls_cert:
        raise ValueError("nats.tls_key is set without nats.tls_cert")
    if auth.tls_ca or auth.tls_cert:
        try:
            context = ssl.create_default_context(cafile=str(auth.tls_ca) if auth.tls_ca else None)
        except (OSError, ValueError) as e:
            raise ValueError(f"nats.tls_ca {auth.tls_ca}: {_reason(e)}") from e
        if auth.tls_cert:
            try:
                context.load_cert_chain(
                    str(auth.tls_cert), str(auth.tls_key) if auth.tls_key else None
                )
            except (OSError, ValueError) as e:
                files = f"{auth.tls_cert}" + (
                    f", nats.tls_key {auth.tls_key}" if auth.tls_key else ""
                )
                raise ValueError(f"nats.tls_cert {files}: {_reason(e)}") from e
        options["tls"] = context
    return options


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e) or type(e).__name__


def _check_seed(seed: bytes | bytearray, where: str) -> None:
    try:
        prefix, _ = nkeys.decode_seed(bytearray(seed))
    except (nkeys.NkeysError, ValueError, IndexError) as e:
        raise ValueError(f"{where}: not a valid nkey seed") from e
    if prefix != nkeys.PREFIX_BYTE_USER:
        raise ValueError(f"{where}: the seed of a user nkey (SU...) is needed, not of another kind")


def check_credentials(auth: NatsSettings | None) -> None:
    """Refuse an unusable nkey seed or credentials file before connecting. nats-py would report
    them late and obscurely, or, for a credentials file without a user JWT, loop forever inside
    the event loop. The messages never include the secrets."""
    if auth is None:
        return
    if auth.nkey_seed:
        _check_seed(auth.nkey_seed.strip().encode(), "nats.nkey_seed")
    if auth.creds:
        where = f"nats.creds {auth.creds}"
        try:
            lines = Path(auth.creds).read_bytes().split(b"\n")
        except OSError as e:
            raise ValueError(f"{where}: {_reason(e)}") from e
        # Read as nats-py reads it: each block's content is the line after its BEGIN line.
        jwt = _after(lines, b"BEGIN NATS USER JWT")
        seed = _after(lines, b"BEGIN USER NKEY SEED")
        if not jwt or jwt.count(b".") != 2:
            raise ValueError(f"{where}: no user JWT (a -----BEGIN NATS USER JWT----- block)")
        if not seed:
            raise ValueError(f"{where}: no user seed (a -----BEGIN USER NKEY SEED----- block)")
        _check_seed(seed, where)


def _after(lines: list[bytes], marker: bytes) -> bytes:
    for i, line in enumerate(lines[:-1]):
        if marker in line:
            return lines[i + 1].strip()
    return b""


class _Client(Client):
    """nats-py's client, but with TLS configured it refuses a server that does not offer TLS.
    nats-py alone would go on in the clear and send the credentials with it, which is all a
    peer in the middle has to provoke (by leaving `tls_required` out of the server's INFO)."""

    require_tls = False

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        # Called with initial_connection=True on each (re)connect, before TLS and CONNECT.
        if self.require_tls and initial_connection and not info.get("tls_required"):
            raise NatsError("secure connection required, but the server does not offer TLS")
        await super()._process_info(info, initial_connection)

    async def _process_connect_init(self) -> None:
        try:
            await super()._process_connect_init()
        except (OSError, TimeoutError):  # ssl.SSLError is an OSError
            # A failed TLS upgrade: asyncio closed the socket, but the plain stream nats-py keeps
            # never learns of it, so nats-py's close() (also the one before each new attempt)
            # would wait for it for ever. Forget that stream; the socket is closed already.
            writer = getattr(self._transport, "_io_writer", None)
            if writer is not None and writer.transport.is_closing():
                self._transport._io_writer = None  # type: ignore[union-attr]
            raise
