"""NATS authentication by nkey, credentials file (user JWT) and TLS, each against a real nats-server
configured for it: what connects, what is refused and how clearly, and `rosey run` with each.

Every key and certificate is made by the test: nkeys from random bytes with the `nkeys` package's
own encoding (`encode_seed`), the JWTs of an operator-mode server signed with such keys (what `nsc`
would write), and a throwaway CA with `cryptography`."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.config.settings import NatsSettings
from runtime.errors import BusError
from runtime.wire.bus import Bus
from tests.clitools import rosey
from tests.conftest import write_project
from tests.opskit import CALC, CALC_CODE
from tests.wire.test_auth import AuthNats, serve

# Keys


def new_key(prefix: int) -> Any:
    """A fresh nkey pair: 32 random bytes, encoded as a seed of the given kind (SU…, SA…, SO…)."""
    return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))


def seed_of(key: Any) -> str:
    return bytes(key.seed).decode()


def public_of(key: Any) -> str:
    return bytes(key.public_key).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(signer: Any, subject: str, kind: str, **claims: Any) -> str:
    """A NATS JWT (v2): header and claims in base64url, signed with the issuer's nkey (ed25519)."""
    body: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": public_of(signer),
        "sub": subject,
        "name": "rosey",
        "nats": {"type": kind, "version": 2, **claims},
    }
    body["jti"] = base64.b32encode(hashlib.sha256(json.dumps(body).encode()).digest()).decode()
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    signed = f"{head}.{_b64(json.dumps(body).encode())}"
    return f"{signed}.{_b64(signer.sign(signed.encode()))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1}


def creds_text(jwt: str, seed: str) -> str:
    """A credentials file as `nsc generate creds` writes it."""
    return (
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )


class Operator:
    """Decentralized auth without `nsc`: an operator key the server trusts, one account JWT it
    preloads, and user JWTs the account signs."""

    def __init__(self) -> None:
        self.operator = new_key(nkeys.PREFIX_BYTE_OPERATOR)
        self.account = new_key(nkeys.PREFIX_BYTE_ACCOUNT)
        limits = {**UNLIMITED, "imports": -1, "exports": -1, "wildcards": True, "conn": -1}
        self.account_jwt = make_jwt(
            self.operator, public_of(self.account), "account", limits={**limits, "leaf": -1}
        )

    def conf(self) -> str:
        return (
            f'trusted_keys: ["{public_of(self.operator)}"]\n'
            "resolver: MEMORY\n"
            f'resolver_preload: {{ {public_of(self.account)}: "{self.account_jwt}" }}\n'
        )

    def creds(self, path: Path, signer: Any = None) -> Path:
        user = new_key(nkeys.PREFIX_BYTE_USER)
        jwt = make_jwt(signer or self.account, public_of(user), "user", pub={}, sub={}, **UNLIMITED)
        path.write_text(creds_text(jwt, seed_of(user)))
        return path


# Certificates


class Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    def __init__(self, folder: Path, name: str = "Rosey test CA") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.ca_name = ca_name
        self.ca_cert = (
            self._builder(ca_name, self.ca_key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(self._usage(ca=True), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca = self._write("ca.pem", self.ca_cert)
        self.server_cert, self.server_key = self.issue(
            "server",
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
        )
        self.client_cert, self.client_key = self.issue("client", ExtendedKeyUsageOID.CLIENT_AUTH)

    def _builder(
        self, subject: x509.Name, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_name if hasattr(self, "ca_cert") else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )

    @staticmethod
    def _usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    def issue(
        self,
        name: str,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None = None,
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(self._usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_path = self.folder / f"{name}-key.pem"
        key_path.write_bytes(key_pem)
        return self._write(f"{name}.pem", cert), key_path

    def _write(self, name: str, cert: x509.Certificate) -> Path:
        path = self.folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def tls_conf(self, verify: bool = False) -> str:
        return (
            f'tls {{ cert_file: "{self.server_cert}", key_file: "{self.server_key}", '
            f'ca_file: "{self.ca}", verify: {str(verify).lower()}, timeout: 2 }}\n'
        )


# Servers


@pytest.fixture
def user_key() -> Any:
    return new_key(nkeys.PREFIX_BYTE_USER)


@pytest.fixture
def nkey_nats(tmp_path: Path, user_key: Any) -> Iterator[AuthNats]:
    conf = f"authorization {{ users = [ {{ nkey: {public_of(user_key)} }} ] }}\n"
    server = AuthNats(tmp_path / "nats-nkey", conf)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def operator() -> Operator:
    return Operator()


@pytest.fixture
def jwt_nats(tmp_path: Path, operator: Operator) -> Iterator[AuthNats]:
    server = AuthNats(tmp_path / "nats-jwt", operator.conf())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_nats(tmp_path: Path, pki: Pki) -> Iterator[AuthNats]:
    server = AuthNats(tmp_path / "nats-tls", pki.tls_conf())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mtls_nats(tmp_path: Path, pki: Pki) -> Iterator[AuthNats]:
    """TLS with `verify: true`: a client must present a certificate from the CA."""
    server = AuthNats(tmp_path / "nats-mtls", pki.tls_conf(verify=True))
    server.start()
    yield server
    server.stop()


async def round_trip(url: str, auth: NatsSettings) -> Bus:
    """Connect, answer a request on one connection from another: the server really let us in."""
    bus = await Bus.connect(url, timeout=2, auth=auth)
    try:

        async def echo(msg: Any) -> None:
            await msg.respond(msg.data)

        await bus.nc.subscribe("test.echo", cb=echo)
        await bus.flush()
        reply = await bus.nc.request("test.echo", b'{"hello": 1}', timeout=2)
        assert reply.data == b'{"hello": 1}'
        assert bus.connected
    finally:
        await bus.close()
    return bus


async def refused(url: str, auth: NatsSettings) -> str:
    with pytest.raises(BusError) as info:
        bus = await Bus.connect(url, timeout=2, reconnect=False, auth=auth)
        await bus.close()
    message = str(info.value)
    assert message.startswith(f"NATS connect failed: {url}: "), message
    return message


# nkeys


async def test_nkey_seed_connects(nkey_nats: AuthNats, user_key: Any) -> None:
    await round_trip(nkey_nats.url, NatsSettings(nkey_seed=seed_of(user_key)))
    # Surrounding white space (a seed pasted into an environment variable) is no problem.
    await round_trip(nkey_nats.url, NatsSettings(nkey_seed=f" {seed_of(user_key)}\n"))


async def test_another_users_nkey_is_refused_by_the_server(nkey_nats: AuthNats) -> None:
    other = seed_of(new_key(nkeys.PREFIX_BYTE_USER))
    message = await refused(nkey_nats.url, NatsSettings(nkey_seed=other))
    assert "Authorization Violation" in message
    assert other not in message
    assert "Authorization Violation" in await refused(nkey_nats.url, NatsSettings())


@pytest.mark.parametrize(
    ("seed", "problem"),
    [
        ("SUnot-a-seed", "nats.nkey_seed: not a valid nkey seed"),
        ("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", "not a valid nkey seed"),
        ("account", "nats.nkey_seed: the seed of a user nkey (SU...) is needed"),
    ],
)
async def test_unusable_nkey_seed_is_a_clear_error(
    nkey_nats: AuthNats, seed: str, problem: str
) -> None:
    if seed == "account":
        seed = seed_of(new_key(nkeys.PREFIX_BYTE_ACCOUNT))
    message = await refused(nkey_nats.url, NatsSettings(nkey_seed=seed))
    assert problem in message
    assert seed not in message


# Credentials files (decentralized JWT auth)


async def test_credentials_file_connects(
    jwt_nats: AuthNats, operator: Operator, tmp_path: Path
) -> None:
    creds = operator.creds(tmp_path / "user.creds")
    await round_trip(jwt_nats.url, NatsSettings(creds=creds))


async def test_credentials_of_an_untrusted_account_are_refused(
    jwt_nats: AuthNats, operator: Operator, tmp_path: Path
) -> None:
    stranger = Operator().creds(tmp_path / "stranger.creds")
    assert "Authorization Violation" in await refused(jwt_nats.url, NatsSettings(creds=stranger))
    # A user JWT signed by the trusted operator itself, not by the account, is no better.
    skipped = operator.creds(tmp_path / "operator-signed.creds", signer=operator.operator)
    assert "Authorization Violation" in await refused(jwt_nats.url, NatsSettings(creds=skipped))


def _unusable_creds(kind: str, folder: Path, operator: Operator) -> tuple[Path, str]:
    path = folder / f"{kind}.creds"
    good = operator.creds(folder / "good.creds").read_text()
    if kind == "missing":
        return path, "No such file or directory"
    if kind == "garbage":
        path.write_text("this is no credentials file\n")
        return path, "no user JWT"
    if kind == "no-jwt":  # nats-py alone loops forever reading it, inside the event loop
        path.write_text(good[good.index("************") :])
        return path, "no user JWT"
    if kind == "no-seed":
        path.write_text(good[: good.index("************")])
        return path, "no user seed"
    if kind == "bad-seed":
        path.write_text(good.replace(good.split("SEED-----\n")[1].split("\n")[0], "SUbroken"))
        return path, "not a valid nkey seed"
    assert kind == "folder"
    path.mkdir()
    return path, "Is a directory"


@pytest.mark.parametrize("kind", ["missing", "garbage", "no-jwt", "no-seed", "bad-seed", "folder"])
async def test_unusable_credentials_file_is_a_clear_error(
    kind: str, jwt_nats: AuthNats, operator: Operator, tmp_path: Path
) -> None:
    path, problem = _unusable_creds(kind, tmp_path, operator)
    # Checked before connecting, so also `rosey run` (which reconnects) fails at once.
    started = time.monotonic()
    with pytest.raises(BusError) as info:
        bus = await Bus.connect(jwt_nats.url, timeout=5, auth=NatsSettings(creds=path))
        await bus.close()
    assert time.monotonic() - started < 2
    assert str(info.value).startswith(f"NATS connect failed: {jwt_nats.url}: nats.creds {path}: ")
    assert problem in str(info.value)


# TLS


async def test_tls_with_the_servers_ca_connects(tls_nats: AuthNats, pki: Pki) -> None:
    bus = await Bus.connect(tls_nats.url, timeout=2, auth=NatsSettings(tls_ca=pki.ca))
    try:
        assert bus.nc._server_info["tls_required"] is True
        transport = bus.nc._transport
        assert transport is not None
        ssl_object = transport._io_writer.get_extra_info("ssl_object")  # type: ignore[attr-defined]
        assert ssl_object is not None and ssl_object.version().startswith("TLS")
    finally:
        await bus.close()
    await round_trip(tls_nats.url, NatsSettings(tls_ca=pki.ca))


async def test_tls_without_the_ca_is_refused(tls_nats: AuthNats, tmp_path: Path) -> None:
    # The system's CAs do not know the throwaway CA; neither does another throwaway CA.
    message = await refused(tls_nats.url, NatsSettings())
    assert "CERTIFICATE_VERIFY_FAILED" in message
    other = Pki(tmp_path / "other-pki", "Another CA")
    message = await refused(tls_nats.url, NatsSettings(tls_ca=other.ca))
    assert "CERTIFICATE_VERIFY_FAILED" in message


async def test_client_certificate_with_verify(
    mtls_nats: AuthNats, pki: Pki, tmp_path: Path
) -> None:
    await round_trip(
        mtls_nats.url, NatsSettings(tls_ca=pki.ca, tls_cert=pki.client_cert, tls_key=pki.client_key)
    )
    # Without a client certificate, or with one from another CA, the server refuses.
    await refused(mtls_nats.url, NatsSettings(tls_ca=pki.ca))
    other = Pki(tmp_path / "other-pki", "Another CA")
    await refused(
        mtls_nats.url,
        NatsSettings(tls_ca=pki.ca, tls_cert=other.client_cert, tls_key=other.client_key),
    )


async def test_tls_configured_never_falls_back_to_plain_text(pki: Pki) -> None:
    """A server (or a peer in the middle) that does not offer TLS gets no credentials at all."""
    received = bytearray()
    got_data = asyncio.Event()

    async def plain_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = {"server_id": "x", "version": "2.10.0", "auth_required": True, "max_payload": 1024}
        writer.write(f"INFO {json.dumps(info)}\r\n".encode())
        await writer.drain()
        while chunk := await reader.read(4096):
            received.extend(chunk)
            got_data.set()
        writer.close()

    server = await asyncio.start_server(plain_server, "127.0.0.1", 0)
    url = f"nats://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        for auth in (
            NatsSettings(user="rosey", password="pw-in-the-clear", tls_ca=pki.ca),
            NatsSettings(token="token-in-the-clear", tls_ca=pki.ca),
        ):
            message = await refused(url, auth)
            assert "secure connection required" in message
        # A tls:// URL asks for TLS as well, without any TLS setting.
        tls_url = url.replace("nats://", "tls://")
        assert "secure connection required" in await refused(tls_url, NatsSettings(token="t-123"))
        # The control: without TLS configured, the same client does send CONNECT to this server.
        with pytest.raises(BusError):
            bus = await Bus.connect(url, timeout=0.5, reconnect=False, auth=NatsSettings())
            await bus.close()
        async with asyncio.timeout(5):
            await got_data.wait()
        assert received.startswith(b"CONNECT ")
        assert b"in-the-clear" not in received and b"t-123" not in received
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"tls_ca": "missing-ca.pem"},
            "nats.tls_ca {tmp}/missing-ca.pem: No such file or directory",
        ),
        ({"tls_ca": "not-pem.txt"}, "nats.tls_ca {tmp}/not-pem.txt: "),
        ({"tls_key": "client-key.pem"}, "nats.tls_key is set without nats.tls_cert"),
        (
            {"tls_cert": "client.pem", "tls_key": "server-key.pem"},
            "nats.tls_cert {tmp}/client.pem, nats.tls_key {tmp}/server-key.pem: ",
        ),
    ],
)
async def test_unusable_tls_files_are_a_clear_error(
    tls_nats: AuthNats, pki: Pki, settings: dict[str, str], problem: str
) -> None:
    (pki.folder / "not-pem.txt").write_text("not a certificate\n")
    auth = NatsSettings(**{k: pki.folder / v for k, v in settings.items()})  # type: ignore[arg-type]
    assert problem.format(tmp=pki.folder) in await refused(tls_nats.url, auth)


# `rosey run` with each


@pytest.mark.parametrize("method", ["nkey", "creds", "mtls"])
def test_rosey_run_connects_with_and_answers_invoke(
    method: str,
    tmp_path: Path,
    user_key: Any,
    operator: Operator,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    project = tmp_path / "project"
    write_project(project, CALC, CALC_CODE)
    server: AuthNats = request.getfixturevalue(
        {"nkey": "nkey_nats", "creds": "jwt_nats", "mtls": "mtls_nats"}[method]
    )
    secret = seed_of(user_key)
    monkeypatch.setenv("TEST_NKEY_SEED", secret)
    nats = {
        "nkey": "nkey_seed: '${TEST_NKEY_SEED}'",
        "creds": f"creds: '{operator.creds(tmp_path / 'rosey.creds')}'",
        "mtls": f"tls_ca: '{pki.ca}', tls_cert: '{pki.client_cert}', tls_key: '{pki.client_key}'",
    }[method]
    # These servers run without JetStream (an operator's accounts would need JetStream limits):
    # what is tested is connecting, so commands take core NATS.
    (project / "rosey.yaml").write_text(
        f"log_level: DEBUG\nnats: {{url: '{server.url}', connect_timeout: 2, {nats}}}\n"
        "delivery: {mode: at-most-once}\n"
    )
    process, errors = serve(project)
    try:
        answer = rosey(project, "invoke", "--json", "ok", "--user", "alice")
        assert answer.returncode == 0, answer.stderr + answer.stdout
        # nats.url is set, so `rosey invoke` asks the running runtime over the same server.
        reply = json.loads(answer.stdout)
        assert reply == {"success": True, "data": {"replies": ["ok alice"]}}, answer.stdout
    finally:
        process.terminate()
        process.wait(20)
    logged = errors.read_text()
    assert process.returncode == 0, logged
    assert f"rosey: NATS {server.url}" in logged and "serving" in logged
    assert secret not in logged + answer.stdout + answer.stderr
