"""What `rosey deploy PATHS` ships: the bundles of manifests, function files and legacy plugin packages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from runtime.config import manifest
from runtime.core import loader
from runtime.core.bundle import Bundle, build
from runtime.errors import DeployError, ManifestError
from runtime.legacy import plugin as legacy


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
    manifests = manifest.paths(manifests_dir)
    read: dict[Path, manifest.Manifest | None] = {}  # each manifest parsed once

    def reading(path: Path) -> manifest.Manifest | None:
        """The manifest at `path`, or None when it cannot be read (`build` then says why)."""
        if path not in read:
            try:
                read[path] = manifest.read(path)
            except ManifestError:
                read[path] = None
        return read[path]

    for target in paths:
        target = target.resolve()
        if not target.exists():
            raise DeployError(str(target), "no such file or folder")
        # Legacy plugin packages (docs/legacy-plugins.md).
        plugins = legacy.plugin_dirs(target) if target.is_dir() else []
        if plugins:
            for folder in plugins:
                bundle = legacy.build_bundle(folder, plugin_ranks)
                wanted[bundle.name] = bundle
            continue
        if target.suffix in (".yaml", ".yml") and target.is_file():
            chosen = [target]
        elif target in (manifests_dir.resolve(), functions_dir.resolve()):
            chosen = manifests
        else:
            chosen = [m for m in manifests if _uses(reading(m), target, functions_dir)]
        if not chosen:
            raise DeployError(str(target), f"no manifest in {manifests_dir} uses this code")
        for path in chosen:
            bundle = build(path, functions_dir, reading(path))
            wanted[bundle.name] = bundle
    return list(wanted.values())


def _uses(read: manifest.Manifest | None, target: Path, functions_dir: Path) -> bool:
    if read is None:
        return True  # include it, so that its errors are reported rather than skipped
    files = [p.resolve() for p in loader.source_files(functions_dir, read.function)]
    return any(p == target or p.is_relative_to(target) for p in files)
