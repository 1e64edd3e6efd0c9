"""One exception base, one subclass per stage; each builds its message in __init__."""

from __future__ import annotations

from runtime.constants import ErrorCode


class RoseyError(Exception):
    """Base of every error Rosey raises on purpose."""

    code: ErrorCode = ErrorCode.PLUGIN_ERROR


class ConfigError(RoseyError):
    """rosey.yaml or the environment holds a value Rosey cannot use."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class ManifestError(RoseyError):
    """A manifest failed to parse or validate; `problems` lists every finding."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in problems))


class LoadError(RoseyError):
    """A function's code could not be imported or its handler is unusable."""

    def __init__(self, function: str, target: str, reason: str) -> None:
        self.function, self.target, self.reason = function, target, reason
        super().__init__(f"function {function!r}: cannot load {target}: {reason}")


class RegistryError(RoseyError):
    """Two functions claim the same name or command."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)


class ContractError(RoseyError):
    """A NATS payload does not match the published contract."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, subject: str, problem: str) -> None:
        self.subject, self.problem = subject, problem
        super().__init__(f"{subject}: {problem}")


class PermissionDenied(RoseyError):
    """A user's rank is below what a command needs."""

    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, command: str, needed: float, have: float) -> None:
        self.command, self.needed, self.have = command, needed, have
        super().__init__(f"!{command} needs rank {needed:g} (you have {have:g})")


class CollectionDenied(RoseyError):
    """A function used a database collection its manifest does not declare."""

    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, function: str, collection: str, allowed: tuple[str, ...]) -> None:
        self.function, self.collection, self.allowed = function, collection, allowed
        declared = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"function {function!r} may not use collection {collection!r} "
            f"(its manifest declares: {declared})"
        )


class SubjectDenied(RoseyError):
    """A function's ctx.publish or ctx.request named a subject functions may not use: the
    database (reached through ctx.db only), Rosey's control subjects, or those carrying a rank."""

    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, function: str, subject: str, reason: str) -> None:
        self.function, self.subject, self.reason = function, subject, reason
        super().__init__(f"function {function!r} may not send to {subject!r}: {reason}")


class InvocationError(RoseyError):
    """A handler raised; the original exception is chained as __cause__."""

    def __init__(
        self, function: str, version: str, detail: str, code: ErrorCode = ErrorCode.PLUGIN_ERROR
    ) -> None:
        self.function, self.version, self.code = function, version, code
        super().__init__(f"{function} {version} failed: {detail}")


class FunctionBusy(RoseyError):
    """A function has all its concurrency in use and its short wait queue is full."""

    def __init__(self, function: str) -> None:
        self.function = function
        super().__init__(f"{function} is busy, try again in a moment.")


class InvocationTimeout(RoseyError):
    """A handler ran past its manifest's timeout."""

    code = ErrorCode.TIMEOUT

    def __init__(self, function: str, version: str, timeout: float) -> None:
        self.function, self.version, self.timeout = function, version, timeout
        super().__init__(f"{function} {version} timed out after {timeout:g}s")


class BusError(RoseyError):
    """A NATS operation failed."""

    code = ErrorCode.NATS_ERROR

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"NATS {operation} failed: {detail}")


class StoreError(RoseyError):
    """A database operation failed on the Redis side."""

    code = ErrorCode.DATABASE_ERROR

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"database {operation} failed: {detail}")


class DeployError(RoseyError):
    """A deploy, rollback or removal was refused or failed; the old version keeps serving."""

    def __init__(self, function: str, reason: str) -> None:
        self.function, self.reason = function, reason
        super().__init__(f"{function}: {reason}")


class ServerError(RoseyError):
    """An embedded server (nats-server, redis-server) could not be started."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"cannot start embedded {server}: {detail}")


class ConnectorError(RoseyError):
    """The CyTube connector cannot (or must not) serve its channel; `fatal` errors stop it for good."""

    def __init__(self, channel: str, problem: str, fatal: bool = True) -> None:
        self.channel, self.problem, self.fatal = channel, problem, fatal
        super().__init__(f"cytube channel {channel!r}: {problem}")


class LoginError(ConnectorError):
    """CyTube refused the bot's login; the message names the account and the server's reason."""

    def __init__(self, channel: str, account: str, reason: str, fatal: bool = True) -> None:
        self.account, self.reason = account, reason
        super().__init__(channel, f"login as {account!r} failed: {reason}", fatal)


class HttpError(RoseyError):
    """The operations HTTP endpoint (health, readiness, metrics) cannot listen where configured."""

    def __init__(self, listen: str, detail: str) -> None:
        self.listen, self.detail = listen, detail
        super().__init__(f"http.listen {listen!r}: {detail}")


class WorkerError(RoseyError):
    """A process-isolated function's call failed in or with its worker process: the handler
    raised there, the worker died, or it went over its memory limit. The message is the detail."""

    def __init__(self, detail: str, code: ErrorCode = ErrorCode.PLUGIN_ERROR) -> None:
        self.detail, self.code = detail, code
        super().__init__(detail)


class QuarantineError(RoseyError):
    """A function is paused after failing too often; a moderator can resume it."""

    def __init__(self, function: str) -> None:
        self.function = function
        super().__init__(
            f"{function} is paused after repeated failures; a moderator can resume it with "
            f"!rosey enable {function}."
        )


class InvalidInput(RoseyError):
    """Raised by a handler for input it cannot use: the user sees `reason`, and the failure is
    the caller's (INVALID_INPUT), so it does not count towards the function's quarantine."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ChannelError(RoseyError):
    """A ctx.channel action or read failed: `code` is the connector's error_code (PERMISSION_DENIED,
    INVALID_INPUT, TIMEOUT, NATS_ERROR) and the message its words, as an author would show them."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        try:
            self.code = ErrorCode(code)
        except ValueError:
            self.code = ErrorCode.PLUGIN_ERROR
        super().__init__(message)


class ChannelDenied(ChannelError):
    """A function used a ctx.channel action its manifest does not declare (`actions:`); nothing
    was sent."""

    def __init__(self, function: str, action: str, what: str) -> None:
        self.function, self.action = function, action
        super().__init__(
            ErrorCode.PERMISSION_DENIED,
            f"function {function!r} may not {what}: its manifest does not declare "
            f"actions: [{action}]",
        )
