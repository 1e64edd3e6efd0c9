"""Names and numbers that make up Rosey's public NATS contract and its defaults."""

from __future__ import annotations

from enum import StrEnum

# Inbound from the CyTube connector.
CHAT = "cytube.chat"
PM = "cytube.pm"
USER_JOIN = "cytube.user.join"
USER_LEAVE = "cytube.user.leave"
MEDIA_CHANGE = "cytube.media.change"

# Outbound to the CyTube connector.
SEND_CHAT = "cytube.send.chat"
SEND_PM = "cytube.send.pm"

# Platform lifecycle.
PLATFORM_STARTUP = "platform.startup"
PLATFORM_SHUTDOWN = "platform.shutdown"
PLATFORM_HEARTBEAT = "platform.heartbeat"

# Operating Rosey.
DEPLOY = "rosey.deploy"
DEPLOY_QUEUE = "rosey.deploy"
DEPLOY_APPLY = "rosey.deploy.apply"
STATUS = "rosey.status"
ENABLE = "rosey.enable"  # resume a quarantined function; every runtime answers


def command_subject(function: str) -> str:
    return f"plugin.{function}.command"


def request_subject(function: str) -> str:
    return f"plugin.{function}.request"


def queue_group(function: str) -> str:
    # One queue group per function: several runtimes share its work without duplicates.
    return f"rosey.{function}"


class ErrorCode(StrEnum):
    RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    TIMEOUT = "TIMEOUT"
    NATS_ERROR = "NATS_ERROR"
    DATABASE_ERROR = "DATABASE_ERROR"
    PLUGIN_ERROR = "PLUGIN_ERROR"


# CyTube ranks, as the server assigns them.
RANKS: tuple[float, ...] = (-1, 0, 1, 1.5, 2, 3, 4, 5, 255)
RANK_NAMES: dict[float, str] = {
    -1: "anonymous",
    0: "guest",
    1: "registered",
    1.5: "leader",
    2: "moderator",
    3: "channel admin",
    4: "channel owner",
    5: "site admin",
    255: "superadmin",
}

DEFAULT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 16
# Invocations that may wait for a free slot, per unit of a function's concurrency; past that the
# user is told the function is busy rather than the queue growing without bound.
QUEUE_PER_SLOT = 4
# Quarantine: a function failing this often within the window is paused until a moderator resumes it.
DEFAULT_QUARANTINE_FAILURES = 5
DEFAULT_QUARANTINE_WINDOW = 60.0
DEFAULT_PREFIX = "!"
HEARTBEAT_INTERVAL = 60.0
# Largest NATS payload the runtime accepts on its subjects (bytes).
MAX_PAYLOAD = 64 * 1024
