"""Names and numbers that make up Rosey's public NATS contract and its defaults."""

from __future__ import annotations

from enum import StrEnum

# Inbound from the CyTube connector.
CHAT = "cytube.chat"
PM = "cytube.pm"
USER_JOIN = "cytube.user.join"
USER_LEAVE = "cytube.user.leave"
MEDIA_CHANGE = "cytube.media.change"
MEDIA_QUEUE = "cytube.media.queue"
MEDIA_DELETE = "cytube.media.delete"
MEDIA_MOVE = "cytube.media.move"
POLL_OPEN = "cytube.poll.open"
POLL_UPDATE = "cytube.poll.update"
POLL_CLOSE = "cytube.poll.close"
USER_RANK = "cytube.user.rank"
USER_AFK = "cytube.user.afk"
VOTESKIP = "cytube.voteskip"

# Outbound to the CyTube connector.
SEND_CHAT = "cytube.send.chat"
SEND_PM = "cytube.send.pm"

# Durable delivery (delivery.mode: durable): JetStream streams over the subjects above, and the
# durable consumers that take from them (runtime/wire/streams.py).
CHAT_STREAM = "ROSEY_CHAT"  # cytube.chat, cytube.pm: the lines commands come from
SEND_STREAM = "ROSEY_SEND"  # cytube.send.chat, cytube.send.pm: what the bot says
ROUTER_CONSUMER = "rosey-router"  # every runtime takes chat lines from this one
CONNECTOR_CONSUMER = "rosey-connector"  # the connector holding the channel takes lines to say
MSG_ID = "Nats-Msg-Id"  # JetStream drops a second message with the same id (dedupe window)
# Channel actions (issue 18): each a request answered {success, error?, error_code?, data?}, or a
# plain publish. `ACTIONS` names the manifest `actions` entry a function needs for each.
SEND_EMOTE = "cytube.send.emote"
PLAYLIST_ADD = "cytube.send.playlist.add"
PLAYLIST_REMOVE = "cytube.send.playlist.remove"
PLAYLIST_MOVE = "cytube.send.playlist.move"
PLAYLIST_JUMP = "cytube.send.playlist.jump"
PLAYLIST_NEXT = "cytube.send.playlist.next"
PLAYLIST_SHUFFLE = "cytube.send.playlist.shuffle"
PLAYLIST_CLEAR = "cytube.send.playlist.clear"
PLAYLIST_SETTEMP = "cytube.send.playlist.settemp"
SEND_VOTESKIP = "cytube.send.voteskip"
POLL_OPEN_SEND = "cytube.send.poll.open"
POLL_CLOSE_SEND = "cytube.send.poll.close"
SEND_MOD = "cytube.send.mod"
CHANNEL_STATE = "cytube.state"  # request: the connector's view of the channel
ACTIONS = {
    PLAYLIST_ADD: "playlist",
    PLAYLIST_REMOVE: "playlist",
    PLAYLIST_MOVE: "playlist",
    PLAYLIST_JUMP: "playlist",
    PLAYLIST_NEXT: "playlist",
    PLAYLIST_SHUFFLE: "playlist",
    PLAYLIST_CLEAR: "playlist",
    PLAYLIST_SETTEMP: "playlist",
    SEND_VOTESKIP: "playlist",
    POLL_OPEN_SEND: "poll",
    POLL_CLOSE_SEND: "poll",
    SEND_MOD: "moderate",
}

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
# Reply caps: the most lines and characters one invocation may say (manifest `reply`); past them
# the answer is cut short, so a function cannot flood the channel's send queue.
DEFAULT_REPLY_LINES = 10
DEFAULT_REPLY_CHARS = 2000
MAX_REPLY_CHARS = 10000  # a chat line's limit in the contract (cytube.send.chat `message`)
# The reply subjects of commands the router routes to Rosey's own functions start with this: an
# invoker that does not run such a command (busy, paused, denied) answers there, and the router
# gives back the cooldown it booked. Not a requester: the answer still goes to chat.
ROUTED_REPLY = "rosey.routed"
DEFAULT_PREFIX = "!"
HEARTBEAT_INTERVAL = 60.0
# Largest NATS payload the runtime accepts on its subjects (bytes).
MAX_PAYLOAD = 64 * 1024
