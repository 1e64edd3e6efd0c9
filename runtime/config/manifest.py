"""Manifests: the only YAML parser in Rosey, and the `Function` built from each manifest."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runtime import schemas
from runtime.config import cron as schedule
from runtime.constants import (
    DEFAULT_CONCURRENCY,
    DEFAULT_QUARANTINE_FAILURES,
    DEFAULT_QUARANTINE_WINDOW,
    DEFAULT_REPLY_CHARS,
    DEFAULT_REPLY_LINES,
    DEFAULT_TIMEOUT,
)
from runtime.errors import ManifestError


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    rank: float = 0
    aliases: tuple[str, ...] = ()
    usage: str = ""
    help: str = ""
    handler: str | None = None
    cooldown: float = 0.0
    # Cooldown scope (`user`, `channel` or `global`) and the rank from which users are exempt
    # (None: nobody is).
    cooldown_per: str = "user"
    cooldown_exempt: float | None = 2


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A `schedules` entry: fire `handler` every `every` seconds or on a `cron` time."""

    name: str
    handler: str | None = None
    every: float | None = None
    cron: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """The `listen` declaration: the handler of plain chat lines while ctx.listen() is on."""

    handler: str | None = None
    max_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class SubjectSpec:
    subject: str
    handler: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    input: str
    expect: str
    rank: float = 0


@dataclass(frozen=True, slots=True)
class Function:
    """A function as its manifest declares it; the routing table is built from these."""

    name: str
    version: str
    description: str
    handler: str | None = None
    commands: Mapping[str, Command] = field(default_factory=dict)
    subjects: tuple[SubjectSpec, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    collections: tuple[str, ...] = ()
    # Channel action families ctx.channel may use: playlist, poll, moderate (constants.ACTIONS).
    actions: tuple[str, ...] = ()
    indexes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    examples: tuple[Example, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    listen: ListenSpec | None = None
    # None: the `isolation.default` setting decides; "none" runs in the runtime's process.
    isolation: str | None = None
    memory: int = 0  # bytes a process-isolated worker may use; 0: no limit
    quarantine_failures: int = DEFAULT_QUARANTINE_FAILURES
    quarantine_window: float = DEFAULT_QUARANTINE_WINDOW
    # Reply caps (manifest `reply`): lines and characters one invocation may say in all.
    reply_lines: int = DEFAULT_REPLY_LINES
    reply_chars: int = DEFAULT_REPLY_CHARS
    source: str = "<memory>"

    @property
    def external(self) -> bool:
        """True when another process answers on plugin.<name>.command: the manifest names no
        handler at all (a function with only event or schedule handlers is not external)."""
        return not self.handler_targets()

    def handler_for(self, command: str) -> str | None:
        spec = self.commands.get(command)
        return (spec.handler if spec else None) or self.handler

    def handler_targets(self) -> set[str]:
        """Every `module:function` this function's code must provide."""
        targets = {c.handler or self.handler for c in self.commands.values()}
        targets |= {s.handler or self.handler for s in self.subjects}
        targets |= {s.handler or self.handler for s in self.schedules}
        if self.listen:
            targets.add(self.listen.handler or self.handler)
        if self.handler:
            targets.add(self.handler)
        return {t for t in targets if t}


def _mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which YAML otherwise resolves silently."""


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)

# libyaml's parser when PyYAML was built with it (about ten times faster). Its constructor is
# Python, as SafeLoader's, so the duplicate-key check applies to both. A file it refuses is read
# again by the pure-Python loader, whose messages (and nesting limit) Rosey's errors are worded on.
_FastLoader: Any = _StrictLoader
if hasattr(yaml, "CSafeLoader"):

    class _StrictCLoader(yaml.CSafeLoader):
        """CSafeLoader that refuses duplicate keys."""

    _StrictCLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _FastLoader = _StrictCLoader


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def read_text(path: Path) -> str:
    """A YAML file's text; unreadable or not UTF-8 is a ManifestError naming the file."""
    source = display_path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError(source, [f"cannot read: {e.strerror or e}"]) from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(
            source, [f"not UTF-8 text: byte {data[e.start]:#04x} at offset {e.start} is invalid"]
        ) from e


def load_yaml(path: Path) -> Any:
    """Parse one YAML file; every problem (unreadable, not UTF-8, bad syntax, nested too deeply)
    is a ManifestError naming the file, syntax errors with line and column."""
    return parse_yaml(read_text(path), display_path(path))


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text read from `source` (named in errors), refusing duplicate keys."""
    try:
        data = yaml.load(text, Loader=_FastLoader)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError):
        pass  # worded by the pure-Python loader below
    else:
        if _too_deep(data):
            raise ManifestError(source, ["YAML is nested too deeply"])
        return data
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError(source, [f"{where}YAML syntax error: {e.problem or e}"]) from e
    except yaml.YAMLError as e:
        raise ManifestError(source, [f"YAML syntax error: {e}"]) from e
    except RecursionError as e:
        raise ManifestError(source, ["YAML is nested too deeply"]) from e
    except (ValueError, TypeError, OverflowError) as e:
        # A scalar PyYAML resolves but cannot build (such as a date out of range), or a key
        # that cannot be hashed.
        raise ManifestError(source, [f"YAML value cannot be read: {e}"]) from e


# Deeper than this, values are refused: the validation that follows recurses (and the pure-Python
# loader ran out of stack a little deeper).
MAX_DEPTH = 200


def _too_deep(data: Any) -> bool:
    """True when lists and mappings nest deeper than MAX_DEPTH (walked without recursing)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return False


def dump_yaml(data: Any) -> str:
    """YAML text for generated manifests (legacy plugin bundles)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def parse(data: Any, source: str = "<memory>") -> Function:
    """Validate a manifest already read into Python values and build its Function."""
    if data is None:
        raise ManifestError(source, ["the file is empty; expected name, version and description"])
    found = schemas.problems_of("manifest.json", data)
    if found:
        raise ManifestError(source, found)
    found = _non_finite(data, "")
    if found:
        raise ManifestError(source, found)
    found = _semantic_problems(data)
    if found:
        raise ManifestError(source, found)
    commands = {
        name: Command(
            name=name,
            rank=spec.get("rank", 0),
            aliases=tuple(spec.get("aliases", ())),
            usage=spec.get("usage", ""),
            help=spec.get("help", ""),
            handler=spec.get("handler"),
            **_cooldown(spec.get("cooldown", 0)),
        )
        for name, spec in (data.get("commands") or {}).items()
    }
    listen = data.get("listen")
    return Function(
        name=data["name"],
        version=data["version"],
        description=data["description"],
        handler=data.get("handler"),
        commands=commands,
        subjects=tuple(
            SubjectSpec(s["subject"], s.get("handler")) for s in data.get("subjects", ())
        ),
        timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
        concurrency=int(data.get("concurrency", DEFAULT_CONCURRENCY)),
        collections=tuple(data.get("collections", ())),
        actions=tuple(data.get("actions", ())),
        indexes={c: tuple(f) for c, f in (data.get("indexes") or {}).items()},
        config=dict(data.get("config") or {}),
        examples=tuple(
            Example(e["input"], e["expect"], e.get("rank", 0)) for e in data.get("examples", ())
        ),
        schedules=tuple(
            ScheduleSpec(
                name=s.get("name") or f"schedule{i}",
                handler=s.get("handler"),
                every=schedule.parse_every(s["every"]) if "every" in s else None,
                cron=s.get("cron"),
                timezone=s.get("timezone", "UTC"),
            )
            for i, s in enumerate(data.get("schedules", ()))
        ),
        listen=(
            ListenSpec(listen.get("handler"), float(listen.get("max_seconds", 300)))
            if listen is not None
            else None
        ),
        isolation=data.get("isolation"),
        memory=parse_size(data["memory"]) if "memory" in data else 0,
        quarantine_failures=int(
            (data.get("quarantine") or {}).get("failures", DEFAULT_QUARANTINE_FAILURES)
        ),
        quarantine_window=float(
            (data.get("quarantine") or {}).get("window", DEFAULT_QUARANTINE_WINDOW)
        ),
        reply_lines=int((data.get("reply") or {}).get("max_lines", DEFAULT_REPLY_LINES)),
        reply_chars=int((data.get("reply") or {}).get("max_chars", DEFAULT_REPLY_CHARS)),
        source=source,
    )


_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """A size such as "256MB", "256M" or "256MiB" in bytes (binary units, as memory is counted)."""
    match = re.fullmatch(r"([1-9][0-9]*)\s*([KMG])i?B?", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 256MB")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _cooldown(value: float | dict[str, Any]) -> dict[str, Any]:
    """The number form is seconds per user; the object form says per what and who is exempt."""
    if not isinstance(value, dict):
        return {"cooldown": float(value)}
    return {
        "cooldown": float(value.get("seconds", 0)),
        "cooldown_per": value.get("per", "user"),
        "cooldown_exempt": value.get("exempt_rank", 2),
    }


def _non_finite(value: Any, where: str) -> list[str]:
    """`.nan` and `.inf` pass JSON Schema bounds (NaN compares False with everything): a timeout,
    cooldown or interval of NaN is refused here. The free-form `config` is the function's own."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or '(top level)'}: {value!r} is not a finite number"]
    if isinstance(value, dict):
        return [
            line
            for key, item in value.items()
            if not (where == "" and key == "config")
            for line in _non_finite(item, f"{where}.{key}" if where else str(key))
        ]
    if isinstance(value, list):
        return [line for i, item in enumerate(value) for line in _non_finite(item, f"{where}[{i}]")]
    return []


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    found: list[str] = []
    commands: dict[str, dict[str, Any]] = data.get("commands") or {}
    subjects: list[dict[str, Any]] = data.get("subjects") or []
    top = data.get("handler")
    local = bool(top) or any("handler" in c for c in commands.values())
    names: dict[str, str] = {name: name for name in commands}
    for name, spec in commands.items():
        if local and not (spec.get("handler") or top):
            found.append(
                f"commands.{name}.handler: required, since the manifest has no top-level handler"
            )
        for alias in spec.get("aliases", ()):
            if alias in names:
                other = names[alias]
                found.append(
                    f"commands.{name}.aliases: {alias!r} is already "
                    + ("a command" if other == alias else f"an alias of {other!r}")
                )
            else:
                names[alias] = name
    for i, spec in enumerate(subjects):
        if not (spec.get("handler") or top):
            found.append(
                f"subjects[{i}].handler: required, since the manifest has no top-level handler"
            )
    found += _schedule_problems(data, top)
    listen = data.get("listen")
    if listen is not None and not (listen.get("handler") or top):
        found.append("listen.handler: required, since the manifest has no top-level handler")
    if "memory" in data and data.get("isolation") == "none":
        found.append("memory: a memory limit needs `isolation: process`")
    if not commands and not subjects and not top:
        found.append("handler: a manifest needs a handler, commands or subjects")
    for collection in data.get("indexes") or {}:
        if collection not in (data.get("collections") or ()):
            found.append(f"indexes.{collection}: not one of the manifest's collections")
    for i, example in enumerate(data.get("examples") or []):
        word = example_words(example["input"])[0] if example_words(example["input"]) else ""
        if word not in names:
            found.append(f"examples[{i}].input: {word!r} is not a command of this manifest")
        try:
            re.compile(example["expect"])
        except re.error as e:
            found.append(f"examples[{i}].expect: not a regular expression: {e}")
    return found


def _schedule_problems(data: dict[str, Any], top: str | None) -> list[str]:
    found: list[str] = []
    names: set[str] = set()
    for i, spec in enumerate(data.get("schedules") or []):
        where = f"schedules[{i}]"
        name = spec.get("name") or f"schedule{i}"
        if name in names:
            found.append(f"{where}.name: {name!r} is already a schedule of this manifest")
        names.add(name)
        if not (spec.get("handler") or top):
            found.append(f"{where}.handler: required, since the manifest has no top-level handler")
        for key, check in (
            ("every", schedule.parse_every),
            ("cron", schedule.Cron.parse),
            ("timezone", schedule.zone),
        ):
            if key in spec:
                try:
                    check(spec[key])
                except ValueError as e:
                    found.append(f"{where}.{key}: {e}")
    return found


def example_words(line: str) -> list[str]:
    """An example's input as words; any command prefix (`!roll`, `?roll`) is dropped."""
    return line.lstrip("!?.~/$#%&*+-=").split()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest file read once: its Function, and its text (which a bundle's hash covers)."""

    function: Function
    text: str


def from_text(text: str, source: str) -> Function:
    """Validate a manifest's YAML text (read from `source`, named in errors)."""
    data = parse_yaml(text, source)
    try:
        return parse(data, source)
    except RecursionError as e:  # nested values PyYAML could still read, too deep to validate
        raise ManifestError(source, ["YAML is nested too deeply"]) from e


def read(path: Path) -> Manifest:
    """Read, parse and validate one manifest file, once: its Function and its text."""
    text = read_text(path)
    return Manifest(from_text(text, display_path(path)), text)


def load(path: Path) -> Function:
    """Read and validate one manifest file."""
    return read(path).function


def paths(directory: Path) -> list[Path]:
    """The manifest files of a folder, in the order they are read."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def read_dir(directory: Path) -> list[Manifest]:
    """Every manifest in a folder, each read once; all problems of all files are reported
    together."""
    found: list[Manifest] = []
    errors: list[ManifestError] = []
    for path in paths(directory):
        try:
            found.append(read(path))
        except ManifestError as e:
            errors.append(e)
    if errors:
        combined = [line for e in errors for line in str(e).splitlines()]
        raise ManifestError("", combined) from errors[0]
    return found


def load_dir(directory: Path) -> list[Function]:
    """Every manifest in a folder; all problems of all files are reported together."""
    return [m.function for m in read_dir(directory)]
