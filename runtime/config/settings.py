"""Deployment settings: dataclasses with defaults, read from rosey.yaml and ROSEY_* variables."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from runtime.config.manifest import display_path, load_yaml
from runtime.constants import DEFAULT_PREFIX, HEARTBEAT_INTERVAL
from runtime.errors import ConfigError, HttpError, ManifestError

DEFAULT_CONFIG = Path("rosey.yaml")
ENV_PREFIX = "ROSEY_"
DEFAULT_LISTEN = "127.0.0.1:8080"
LISTEN_OFF = ("", "off", "0", "no", "false")
# Settings that take one of a few words (log_level in any case, as the logging module does).
CHOICES: dict[str, tuple[str, ...]] = {
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "log_format": ("text", "json"),
    "isolation.default": ("none", "process"),
    "cooldowns": ("shared", "local"),
    "redis.fsync": ("everysec", "always"),
    "delivery.mode": ("durable", "at-most-once"),
}


# What nats-py connects to; a cluster is several of them, one per node.
NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def nats_servers(url: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` → one URL per node, each checked; ValueError says which
    one is wrong. A process connects to any of them and fails over to the others."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("expected a NATS URL such as nats://127.0.0.1:4222")
    for server in servers:
        scheme, sep, rest = server.partition("://")
        host = rest.rpartition("@")[2].split("/", 1)[0]
        if not sep or scheme.lower() not in NATS_SCHEMES or not host or host.startswith(":"):
            raise ValueError(
                f"{server!r} is not a NATS URL: expected {' or '.join(NATS_SCHEMES)}://host:port"
            )
    return servers


@dataclass
class NatsSettings:
    # None: start an embedded nats-server. Several servers (a cluster) as a YAML list or a
    # comma-separated string; kept as the comma form, which the environment uses too.
    url: str | None = None
    connect_timeout: float = 5.0
    # Credentials for a configured server (any one way): user/password, token, a credentials
    # file, an nkey seed; TLS with a CA and optionally a client certificate.
    user: str = ""
    password: str = ""
    token: str = ""
    creds: Path | None = None
    nkey_seed: str = ""
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass
class DeliverySettings:
    """How chat commands travel (docs/operations.md, "Delivery"). `durable`: through JetStream
    streams, acknowledged once answered, redelivered to another runtime when one dies, answered at
    most once. `at-most-once`: core NATS, as before JetStream; a NATS restart can lose commands."""

    mode: str = "durable"
    max_age: float = 60.0  # a command older than this when delivered is not run (counted, logged)
    replicas: int = 1  # copies of each stream in a NATS cluster (3 on a 3-node cluster)
    ack_wait: float = 5.0  # a runtime silent this long about a command loses it to another
    max_bytes: int = 64 * 1024 * 1024  # per stream, on the NATS servers' disks


@dataclass
class RedisSettings:
    url: str | None = None  # None: start an embedded redis-server
    prefix: str = "rosey:db:"  # begins every Redis key Rosey writes (runtime/config/keys.py)
    # When Redis syncs its append-only file to disk: `everysec` may lose the last second of
    # acknowledged writes on power loss; `always` loses none and costs a disk sync per write.
    # The embedded redis-server is started with it; a configured one must already run with it.
    fsync: str = "everysec"


@dataclass
class CytubeSettings:
    url: str = ""
    channel: str = ""
    username: str = ""
    password: str = ""
    channel_password: str = ""
    # Outbound throttle: a token bucket safe even under a channel's antiflood option (docs/cytube.md).
    throttle_burst: int = 4
    throttle_rate: float = 1.0  # messages per second
    message_limit: int = 320  # the server's max-chat-message-length; longer text is split
    send_queue_size: int = 200  # messages waiting to be sent; beyond that they fail
    send_max_wait: float = 120.0  # seconds a message may wait (e.g. while disconnected)
    send_retries: int = 5  # re-sends after `cooldown` or a dropped connection
    reconnect_delay: float = 1.0  # first delay; doubles up to reconnect_max_delay
    reconnect_max_delay: float = 60.0
    timeout: float = 15.0  # seconds for socketconfig, connect, join and login
    lease_ttl: float = 15.0  # seconds; the channel lease in Redis is renewed every third of it
    # Channel actions (docs/cytube.md): seconds to wait for the event by which CyTube shows an
    # action took effect (it refuses most in silence); adds get longer (the server may look up
    # the media first). Keep them below the requesters' NATS timeout.
    action_timeout: float = 4.0
    add_timeout: float = 8.0


@dataclass
class DeploySettings:
    token: str = ""  # empty: `rosey run` makes one and records it in data_dir for local use
    keep_versions: int = 5
    ack_window: float = 0.3  # how long a deploy waits for other runtimes to report their swap


@dataclass
class IsolationSettings:
    """Process isolation (runtime/isolation.py): the default for manifests that do not say."""

    default: str = "none"  # or "process": every function in a worker process of its own
    restart_backoff: float = 0.1  # seconds before restarting a dead worker, doubled each time
    restart_backoff_max: float = 10.0
    kill_grace: float = 1.0  # after a timeout, seconds a worker has to give up the call


@dataclass
class HttpSettings:
    # host:port of /healthz, /readyz and /metrics. Loopback by default: metrics name functions and
    # users' traffic, so exposing them is a deliberate choice. "off" turns the endpoint off; port 0
    # picks a free port, and so does the default when another process holds port 8080.
    listen: str = DEFAULT_LISTEN


@dataclass
class ConsoleSettings:
    """The web console (runtime/web/), served on http.listen beside /healthz and /metrics."""

    enabled: bool = True
    # Logs in to the console; empty: the deploy token. Required off loopback (settings check).
    token: str = ""
    session_hours: float = 12.0  # a login lasts this long
    secure_cookie: bool = False  # mark the session cookie Secure (behind a TLS reverse proxy)


@dataclass
class ActivationSettings:
    stream: str = "activations"  # the Redis stream, a key under redis.prefix
    max_records: int = 10_000  # the stream is capped near this length (XADD MAXLEN ~)
    retention: float = 7 * 86400.0  # seconds; older records are trimmed
    buffer: int = 10_000  # records waiting to be written; past it the oldest are dropped


@dataclass
class DatabaseSettings:
    # Records a query with no usable index may read; above it the query is refused with the
    # index to declare (docs/database.md). 0 refuses every such query.
    scan_limit: int = 1000


@dataclass
class PluginsSettings:
    """Legacy plugin packages (docs/legacy-plugins.md), looked up as folders in `dir`."""

    enabled: list[str] = field(default_factory=list)  # loaded and started in the runtime
    standalone: list[str] = field(default_factory=list)  # run as their own process: routed only
    dir: Path = Path("plugins")
    ranks: dict[str, float] = field(default_factory=dict)  # command → CyTube rank it needs


@dataclass
class Settings:
    nats: NatsSettings = field(default_factory=NatsSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    cytube: CytubeSettings | None = None  # None: console chat on standard input
    deploy: DeploySettings = field(default_factory=DeploySettings)
    isolation: IsolationSettings = field(default_factory=IsolationSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    activations: ActivationSettings = field(default_factory=ActivationSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    data_dir: Path = Path(".rosey")
    functions_dir: Path = Path("functions")
    manifests_dir: Path = Path("manifests")
    command_prefix: str = DEFAULT_PREFIX
    channel: str = "console"
    log_level: str = "INFO"
    log_format: str = "text"  # or "json", one object per line for log collectors
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    sync_workers: int = 32  # threads for sync handlers, shared by all functions
    drain_timeout: float = 10.0
    # "shared": cooldowns in Redis, across runtimes; "local": in memory (one router, no round trip).
    cooldowns: str = "shared"
    # The config file as the user named it (default rosey.yaml), for messages; not a setting.
    source: str = field(default=str(DEFAULT_CONFIG), init=False, compare=False)

    def check(self, plugins: bool = True) -> None:
        """What can be checked before any server starts, beyond what `load` checked: the HTTP
        address and (`plugins`) that every plugin package in plugins.enabled/standalone exists."""
        delivery = self.delivery
        if delivery.max_age <= 0 or delivery.ack_wait <= 0:
            key = "delivery.max_age" if delivery.max_age <= 0 else "delivery.ack_wait"
            raise ConfigError(self.source, key, "expected a number of seconds above 0")
        if not 1 <= delivery.replicas <= 5 or delivery.max_bytes < 1024 * 1024:
            key = "delivery.replicas" if not 1 <= delivery.replicas <= 5 else "delivery.max_bytes"
            raise ConfigError(self.source, key, "expected 1 to 5 replicas and at least 1 MiB")
        if self.database.scan_limit < 0:
            raise ConfigError(self.source, "database.scan_limit", "expected 0 or more")
        address = parse_listen(self.http.listen)
        console = self.console.enabled and not (self.console.token or self.deploy.token)
        if address and console and not is_loopback(address[0]):
            raise ConfigError(
                self.source,
                "console.token",
                f"http.listen {self.http.listen} is not a loopback address: set console.token "
                "(or deploy.token) so the web console asks for it, or console.enabled: false",
            )
        if plugins:
            for key in ("enabled", "standalone"):
                plugin_folders(self.plugins, getattr(self.plugins, key), self.source, key)

    def resolve(self, base: Path) -> Settings:
        """Paths relative to the folder of the config file."""
        for name in ("data_dir", "functions_dir", "manifests_dir"):
            path: Path = getattr(self, name)
            if not path.is_absolute():
                setattr(self, name, base / path)
        if not self.plugins.dir.is_absolute():
            self.plugins.dir = base / self.plugins.dir
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (default ./rosey.yaml, optional) and the environment."""
    environ = os.environ if environ is None else environ
    explicit = path is not None
    path = path or DEFAULT_CONFIG
    source = str(path)  # as the user gave it: messages name the file they typed
    data: Any = {}
    if path.exists():
        try:
            data = load_yaml(path) or {}
        except ManifestError as e:
            raise ConfigError(source, "", "; ".join(e.problems)) from e
    elif explicit:
        raise ConfigError(source, "", "file not found")
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "expected a mapping of settings")
    data = _interpolate(source, data, environ, "")
    settings = _build(Settings, data, source, "")
    _apply_env(settings, environ)
    settings.source = source
    base = path.resolve().parent if path.exists() else Path.cwd()
    return settings.resolve(base)


def parse_listen(listen: str) -> tuple[str, int] | None:
    """`host:port` (IPv6 as `[::1]:8080`) → (host, port); None when the endpoint is off."""
    value = listen.strip()
    if value.lower() in LISTEN_OFF:
        return None
    host, colon, port = value.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise HttpError(listen, 'expected host:port such as "127.0.0.1:8080", or "off"')
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plugin_folders(
    plugins: PluginsSettings, names: list[str], source: str, key: str = "enabled"
) -> list[Path]:
    """The package folder of each plugin named in plugins.<key>; ConfigError for a missing one."""
    folders = []
    for name in names:
        folder = plugins.dir / name
        if not (folder / "__init__.py").exists():
            raise ConfigError(
                source,
                f"plugins.{key}",
                f"{name!r}: no plugin package {display_path(folder)}/__init__.py",
            )
        folders.append(folder)
    return folders


def _interpolate(source: str, value: Any, environ: Mapping[str, str], key: str) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(source, v, environ, f"{key}.{k}" if key else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(source, v, environ, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(source, key, f"environment variable {name} is not set")

    return _VAR.sub(sub, value)


def _build(cls: type, data: Any, source: str, key: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, key, f"expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise ConfigError(
            source, where, f"unknown key; expected one of: {', '.join(sorted(names))}"
        )
    values = {
        name: _convert(hints[name], value, source, f"{key}.{name}" if key else name)
        for name, value in data.items()
    }
    return cls(**values)


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    args = get_args(hint)
    if get_origin(hint) in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key)  # type: ignore[arg-type]
    if key == "nats.url":
        return _nats_url(value, source, key)
    if get_origin(hint) in (list, dict):
        return _convert_collection(hint, value, source, key)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint in (int, float):
            if isinstance(value, bool):
                raise ValueError
            return hint(value)
        if hint is Path:
            if not isinstance(value, str | Path):
                raise ValueError
            return Path(value)
        if hint is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            return _choice(str(value), source, key)
    except (TypeError, ValueError) as e:
        raise ConfigError(source, key, f"expected {_type_name(hint)}, got {value!r}") from e
    return value


def _nats_url(value: Any, source: str, key: str) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ConfigError(source, key, f"expected a NATS URL or a list of them, got {value!r}")
    try:
        return ",".join(nats_servers(value))
    except ValueError as e:
        raise ConfigError(source, key, str(e)) from e


def _choice(value: str, source: str, key: str) -> str:
    choices = CHOICES.get(key)
    if choices is None:
        return value
    folded = value.upper() if key == "log_level" else value
    if folded not in choices:
        raise ConfigError(source, key, f"expected one of {', '.join(choices)}, got {value!r}")
    return folded


def _convert_collection(hint: Any, value: Any, source: str, key: str) -> Any:
    # From the environment a list is "a,b" and a mapping "a=1,b=2".
    item = get_args(hint)[-1]
    if get_origin(hint) is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected a list, got {value!r}")
        return [_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(source, key, f"expected name=value pairs, got {value!r}")
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected a mapping, got {value!r}")
    return {str(k): _convert(item, v, source, f"{key}.{k}") for k, v in value.items()}


def _type_name(hint: Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", Path: "a path"}.get(
        hint, "a string"
    )


def env_keys(cls: type = Settings, prefix: str = ENV_PREFIX, key: str = "") -> dict[str, str]:
    """ROSEY_NATS_URL → nats.url, and so on for every setting."""
    out: dict[str, str] = {}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        dotted = f"{key}.{f.name}" if key else f.name
        hint = hints[f.name]
        inner = next((a for a in get_args(hint) if dataclasses.is_dataclass(a)), hint)
        if dataclasses.is_dataclass(inner):
            out.update(env_keys(inner, f"{prefix}{f.name.upper()}_", dotted))  # type: ignore[arg-type]
        else:
            out[f"{prefix}{f.name.upper()}"] = dotted
    return out


def _apply_env(settings: Settings, environ: Mapping[str, str]) -> None:
    hints_cache: dict[type, dict[str, Any]] = {}
    for var, dotted in env_keys().items():
        if var not in environ:
            continue
        *parents, name = dotted.split(".")
        target: Any = settings
        for parent in parents:
            child = getattr(target, parent)
            if child is None:  # an optional section such as cytube, created by its first variable
                hint = get_type_hints(type(target))[parent]
                section: Any = next(a for a in get_args(hint) if dataclasses.is_dataclass(a))
                child = section()
                setattr(target, parent, child)
            target = child
        hints = hints_cache.setdefault(type(target), get_type_hints(type(target)))
        setattr(target, name, _convert(hints[name], environ[var], f"${var}", dotted))
