"""Log output: human-readable lines or JSON objects, with invocation fields and without secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from runtime.config.settings import Settings
from runtime.errors import ConfigError

FORMATS = ("text", "json")
FUNCTION_LOGGER = "rosey.fn."
MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(tags)s: %(message)s"
# Shorter values would mask ordinary words in every line; such a secret is too weak to matter.
MIN_SECRET = 4
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold (from rosey.yaml or the environment)."""
    nats, cytube = settings.nats, settings.cytube
    found = [nats.password, nats.token, nats.nkey_seed, settings.deploy.token]
    found.append(settings.console.token)  # the web console's login
    if cytube is not None:
        found += [cytube.password, cytube.channel_password]
    # nats.url may list a cluster's servers, each with its own password.
    for url in [*(nats.url or "").split(","), settings.redis.url]:
        if url and url.strip():
            found.append(urlsplit(url.strip()).password or "")
    return [s for s in found if s]


class Redactor:
    """Masks the given secrets, and any password written into a URL, in a piece of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def invocation(record: logging.LogRecord) -> dict[str, str]:
    """function, version and correlation id of a line about an invocation, as far as known.

    Handlers' ctx.log passes all three as `extra`; the Invoker's own lines come from the
    function's logger `rosey.fn.<name>`, which names the function at least.
    """
    found = {
        key: str(value)
        for key in ("function", "version", "id")
        if (value := getattr(record, key, None)) not in (None, "")
    }
    if "function" not in found and record.name.startswith(FUNCTION_LOGGER):
        found["function"] = record.name.removeprefix(FUNCTION_LOGGER)
    return found


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 WARNING rosey.fn.dice [dice 1.0.0 #4f2a…]: message`."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact or Redactor()

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = invocation(record)
        tags = [fields.get("function", ""), fields.get("version", "")]
        if "id" in fields:
            tags.append("#" + fields["id"])
        label = " ".join(t for t in tags if t)
        return TEXT_FORMAT % {**record.__dict__, "tags": f" [{label}]" if label else ""}

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, function, version,
    id, and exception when there is one."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            **invocation(record),
        }
        if record.exc_info:
            out["exception"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exception"] = self.redact(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ConfigError(
            "settings", "log_format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}"
        )
    redact = Redactor(secrets)
    return JsonFormatter(redact) if fmt == "json" else TextFormatter(redact)


def setup(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log line to standard error (or `stream`) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt, secrets))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True
    )
