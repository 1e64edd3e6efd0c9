"""Bundles: a function's manifest and source files with a content hash, as deploys ship them."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from runtime.config import manifest
from runtime.config.manifest import Function
from runtime.core import loader
from runtime.errors import DeployError

# A bundle's name and hash become folder names (data_dir/bundles/<name>/<hash>), so both are
# checked before any path is built from them: the name as manifests allow it, the hash as the
# hex digest `Bundle.create` makes.
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_HASH = re.compile(r"[0-9a-f]{16}")


def content_hash(text: str, files: dict[str, str]) -> str:
    """The hash of a manifest's text and its files: what names a bundle's folder."""
    h = hashlib.sha256(text.encode())
    for path in sorted(files):
        h.update(b"\0" + path.encode() + b"\0" + files[path].encode())
    return h.hexdigest()[:16]


def _path_problem(rel: str) -> str | None:
    """Why `rel` may not name a file inside a bundle, or None: relative, forward slashes, no
    `..`, `.` or empty parts, no NUL."""
    if not rel or "\0" in rel or "\\" in rel:
        return "is empty or holds a NUL or a backslash"
    if rel.startswith("/") or PurePosixPath(rel).is_absolute():
        return "is absolute"
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' part"
    return None


def regular_file(path: Path, base: Path, name: str) -> None:
    """Refuse (DeployError) a file to bundle that is, or lies under, a symbolic link below
    `base`, or that is not a regular file (a FIFO would hang the read, a device leak data)."""
    rel = path.relative_to(base)
    current = base
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            raise DeployError(name, f"{current} is a symbolic link; bundles take only real files")
    try:
        mode = path.lstat().st_mode
    except OSError as e:
        raise DeployError(name, f"cannot read {path}: {e.strerror or e}") from e
    if not stat.S_ISREG(mode):
        raise DeployError(name, f"{path} is not a regular file")


@dataclass(frozen=True)
class Bundle:
    """What `rosey deploy` ships: everything a runtime needs to serve one function."""

    name: str
    version: str
    manifest: str  # the manifest's YAML text
    files: dict[str, str] = field(default_factory=dict)  # path relative to functions/ → source
    hash: str = ""
    source: str = ""  # where the manifest came from, for messages

    @classmethod
    def create(
        cls, name: str, version: str, text: str, files: dict[str, str], source: str = ""
    ) -> Bundle:
        return cls(name, version, text, dict(files), content_hash(text, files), source)

    def __post_init__(self) -> None:
        """Every bundle, made here or received, has a name, a hash and file paths that are
        safe to build paths from (see materialize)."""
        label = self.name if isinstance(self.name, str) and _NAME.fullmatch(self.name) else "?"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DeployError(
                label,
                f"malformed bundle: name {self.name!r} must start with a lowercase letter "
                "and use only a-z, 0-9, '-' and '_' (at most 64)",
            )
        if not isinstance(self.hash, str) or not _HASH.fullmatch(self.hash):
            raise DeployError(
                label, f"malformed bundle: hash {self.hash!r} is not a 16-digit hex digest"
            )
        for field_name in ("version", "manifest", "source"):
            if not isinstance(getattr(self, field_name), str):
                raise DeployError(label, f"malformed bundle: {field_name} is not text")
        for rel, text in self.files.items():
            if not isinstance(rel, str) or not isinstance(text, str):
                raise DeployError(label, f"malformed bundle: file {rel!r} is not text")
            problem = _path_problem(rel)
            if problem:
                raise DeployError(label, f"malformed bundle: file path {rel!r} {problem}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Bundle:
        """A bundle as shipped or stored; its hash is recomputed from its content, and a
        bundle whose hash does not match (tampered with, or a made-up folder name) is refused."""
        try:
            raw = json.loads(data) if isinstance(data, str | bytes) else data
        except (ValueError, RecursionError) as e:
            raise DeployError("?", f"malformed bundle: not JSON: {e}") from e
        if not isinstance(raw, dict):
            raise DeployError("?", "malformed bundle: not an object")
        try:
            bundle = cls(
                raw["name"],
                raw["version"],
                raw["manifest"],
                dict(raw["files"]),
                raw["hash"],
                raw.get("source", ""),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DeployError(str(raw.get("name", "?")), f"malformed bundle: missing {e}") from e
        try:
            expected = content_hash(bundle.manifest, bundle.files)
        except UnicodeEncodeError as e:  # a lone surrogate, which JSON's \ud800 can carry
            raise DeployError(bundle.name, f"malformed bundle: not UTF-8 text: {e}") from e
        if bundle.hash != expected:
            raise DeployError(
                bundle.name,
                f"bundle hash {bundle.hash} does not match its content ({expected}): "
                "refused as tampered with",
            )
        return bundle

    def function(self) -> Function:
        """The bundle's manifest, parsed and validated."""
        f = manifest.from_text(self.manifest, self.source or f"{self.name}.yaml")
        if f.name != self.name:
            raise DeployError(self.name, f"manifest name {f.name!r} does not match the bundle")
        return f

    def materialize(self, root: Path) -> Path:
        """Write the source files under root/<name>/<hash>/ and return that folder, with the
        marker that makes tracebacks show the author's paths (functions/<file>, loader.ORIGIN)."""
        folder = root / self.name / self.hash
        for rel, text in self.files.items():
            path = (folder / rel).resolve()
            if not path.is_relative_to(folder.resolve()):
                raise DeployError(self.name, f"file path {rel!r} leaves the bundle")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        if loader.ORIGIN not in self.files:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / loader.ORIGIN).write_text("functions", "utf-8")
        return folder


def build(
    manifest_path: Path, functions_dir: Path, read: manifest.Manifest | None = None
) -> Bundle:
    """Bundle one manifest with the source files its handlers need. `read` is the manifest as
    already read from `manifest_path`, which is then not parsed again."""
    regular_file(manifest_path, manifest_path.parent, manifest_path.stem)
    read = read or manifest.read(manifest_path)
    f = read.function
    files: dict[str, str] = {}
    for path in loader.source_files(functions_dir, f):
        if not (path.exists() or path.is_symlink()):
            continue
        regular_file(path, functions_dir, f.name)
        try:
            files[path.relative_to(functions_dir).as_posix()] = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DeployError(f.name, f"cannot read {path}: {e}") from e
    return Bundle.create(f.name, f.version, read.text, files, f.source)


def check_elsewhere(
    name: str, module_args: list[str], stdin: str | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Run `python -m <module_args>`, which prints one JSON line `{ok, error?, ...}` last; a crash,
    a hang or `ok: false` becomes a DeployError, so broken code never runs in the runtime."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", *module_args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise DeployError(name, f"importing the code took over {timeout:g}s") from e
    try:
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as e:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DeployError(name, "import check crashed: " + " | ".join(tail)) from e
    if not answer["ok"]:
        raise DeployError(name, answer["error"])
    return answer
