"""Bundles: a function's manifest and source files with a content hash, as deploys ship them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.config import manifest
from runtime.config.manifest import Function
from runtime.core import loader
from runtime.errors import DeployError, ManifestError


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
        h = hashlib.sha256(text.encode())
        for path in sorted(files):
            h.update(b"\0" + path.encode() + b"\0" + files[path].encode())
        return cls(name, version, text, dict(files), h.hexdigest()[:16], source)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Bundle:
        raw = json.loads(data) if isinstance(data, str | bytes) else data
        try:
            return cls(
                raw["name"],
                raw["version"],
                raw["manifest"],
                dict(raw["files"]),
                raw["hash"],
                raw.get("source", ""),
            )
        except (KeyError, TypeError) as e:
            raise DeployError(str(raw.get("name", "?")), f"malformed bundle: missing {e}") from e

    def function(self) -> Function:
        """The bundle's manifest, parsed and validated."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{self.name}.yaml"
            path.write_text(self.manifest)
            try:
                f = manifest.parse(manifest.load_yaml(path), self.source or f"{self.name}.yaml")
            except ManifestError as e:
                lines = [p.replace(str(path), self.source) for p in e.problems]
                raise ManifestError(self.source or f"{self.name}.yaml", lines) from e
        if f.name != self.name:
            raise DeployError(self.name, f"manifest name {f.name!r} does not match the bundle")
        return f

    def materialize(self, root: Path) -> Path:
        """Write the source files under root/<name>/<hash>/ and return that folder."""
        folder = root / self.name / self.hash
        for rel, text in self.files.items():
            path = (folder / rel).resolve()
            if not path.is_relative_to(folder.resolve()):
                raise DeployError(self.name, f"file path {rel!r} leaves the bundle")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return folder


def build(manifest_path: Path, functions_dir: Path) -> Bundle:
    """Bundle one manifest with the source files its handlers need."""
    f = manifest.load(manifest_path)
    files = {
        str(path.relative_to(functions_dir)): path.read_text()
        for path in loader.source_files(functions_dir, f)
        if path.exists()
    }
    return Bundle.create(f.name, f.version, manifest_path.read_text(), files, f.source)


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
