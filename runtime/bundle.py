"""Bundles: a function's manifest and source files with a content hash, as deploys ship them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import loader, manifest
from .errors import DeployError, LoadError, ManifestError
from .manifest import Function


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


def collect(
    paths: Iterable[Path],
    manifests_dir: Path,
    functions_dir: Path,
    plugin_ranks: Mapping[str, float] | None = None,
) -> list[Bundle]:
    """The bundles a deploy of `paths` means: manifests named directly, or whose code is there.

    A legacy plugin package (or a folder of them, such as plugins/) is bundled as itself, its
    commands ranked by `plugin_ranks` (rosey.yaml's plugins.ranks).
    """
    wanted: dict[str, Bundle] = {}
    manifests = sorted([*manifests_dir.glob("*.yaml"), *manifests_dir.glob("*.yml")])
    for target in paths:
        target = target.resolve()
        if not target.exists():
            raise DeployError(str(target), "no such file or folder")
        # Legacy plugin packages (docs/legacy-plugins.md). Imported here, not at the top:
        # runtime.legacy builds Bundles, so it imports this module.
        from . import legacy

        plugins = legacy.plugin_dirs(target) if target.is_dir() else []
        if plugins:
            for folder in plugins:
                bundle = legacy.build_bundle(folder, plugin_ranks)
                wanted[bundle.name] = bundle
            continue
        if target.suffix in (".yaml", ".yml") and target.is_file():
            chosen = [target]
        else:
            chosen = [m for m in manifests if _uses(m, target, functions_dir)]
            if target.resolve() in (manifests_dir.resolve(), functions_dir.resolve()):
                chosen = manifests
            if not chosen:
                raise DeployError(str(target), f"no manifest in {manifests_dir} uses this code")
        for path in chosen:
            bundle = build(path, functions_dir)
            wanted[bundle.name] = bundle
    return list(wanted.values())


def _uses(manifest_path: Path, target: Path, functions_dir: Path) -> bool:
    try:
        f = manifest.load(manifest_path)
    except ManifestError:
        return True  # include it, so that its errors are reported rather than skipped
    files = [p.resolve() for p in loader.source_files(functions_dir, f)]
    return any(p == target or p.is_relative_to(target) for p in files)


def precheck(bundle: Bundle, timeout: float = 30.0) -> None:
    """Import the bundle in a throwaway process; raises with file and line on any problem."""
    bundle.function()  # schema errors need no process
    check_elsewhere(bundle.name, ["runtime.bundle"], bundle.to_json(), timeout)


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


def _check_here(bundle: Bundle) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = bundle.materialize(Path(tmp))
        try:
            code = loader.load(bundle.function(), folder)
        except LoadError as e:
            reason = f"cannot load {e.target}: {e.reason}"
            return {"ok": False, "error": reason.replace(f"{folder}/", "functions/")}
        except (ManifestError, DeployError) as e:
            return {"ok": False, "error": str(e)}
        code.purge()
    return {"ok": True}


if __name__ == "__main__":
    print(json.dumps(_check_here(Bundle.from_json(sys.stdin.read()))))
