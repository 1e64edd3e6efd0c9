"""Legacy plugin packages (`plugins/<name>/__init__.py` with PLUGIN_INFO, start and stop):
imported under fresh module names, described as external Functions, and bundled for deploys."""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.config.manifest import Command, Function, display_path, dump_yaml
from runtime.constants import RANKS
from runtime.core import loader
from runtime.core.bundle import Bundle, check_elsewhere, regular_file
from runtime.core.loader import execute
from runtime.core.registry import Registry
from runtime.errors import ConfigError, DeployError, LoadError
from runtime.legacy import coreimport

log = logging.getLogger("rosey.legacy")

MARKER = ".rosey-legacy.json"  # the file in a bundle that says "legacy plugin package"
_SEMVER = re.compile(r"^\d+(\.\d+){0,2}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass
class PluginCode:
    """One import of a plugin package; `module` holds PLUGIN_INFO, start and stop."""

    function: Function
    module: ModuleType
    prefix: str
    folder: Path
    migrations: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # entries of sys.path_importer_cache

    @property
    def start(self) -> Callable[..., Any]:
        return self.module.start

    @property
    def stop(self) -> Callable[..., Any]:
        return self.module.stop

    def purge(self) -> None:
        """Forget the modules of this import; a running instance keeps its references."""
        for name in [m for m in sys.modules if m == self.prefix or m.startswith(self.prefix + ".")]:
            del sys.modules[name]
        loader.forget_folders(self.folders)


def is_plugin_dir(path: Path) -> bool:
    """A folder whose __init__.py assigns PLUGIN_INFO."""
    init = path / "__init__.py"
    try:
        return path.is_dir() and "PLUGIN_INFO" in init.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def plugin_dirs(target: Path) -> list[Path]:
    """`target` itself when it is a plugin package, else the plugin packages directly in it."""
    if is_plugin_dir(target):
        return [target]
    if not target.is_dir():
        return []
    return sorted(p for p in target.iterdir() if is_plugin_dir(p))


def load(
    folder: Path, ranks: Mapping[str, float] | None = None, source: str | None = None
) -> PluginCode:
    """Import the package in `folder` under a fresh name; raises LoadError with file and line."""
    coreimport.install()
    init = folder / "__init__.py"
    where = source or display_path(folder)
    if not init.exists():
        raise LoadError(folder.name, where, "no __init__.py: not a plugin package")
    prefix = f"_rosey_legacy_{re.sub(r'[^A-Za-z0-9_]', '_', folder.name)}_{uuid.uuid4().hex[:10]}"
    # A deployed bundle's files: tracebacks show the author's paths (plugins/<name>/...).
    shown = where if loader.origin(folder) is not None else None
    spec = importlib.util.spec_from_file_location(
        prefix,
        init,
        loader=loader.source_loader(prefix, init, folder, shown) if shown else None,
        submodule_search_locations=[str(folder.absolute())],
    )
    if spec is None or spec.loader is None:
        raise LoadError(folder.name, where, f"{init} is not importable")
    module = importlib.util.module_from_spec(spec)
    sys.modules[prefix] = module
    code = PluginCode(Function(folder.name, "0.0.0", ""), module, prefix, folder)
    if shown:
        code.folders = loader.author_paths(folder, shown)
    try:
        execute(folder.name, where, lambda: spec.loader.exec_module(module))  # type: ignore[union-attr]
        info = getattr(module, "PLUGIN_INFO", None)
        code.function = function_of(info, ranks or {}, f"{where}/__init__.py")
        for hook in ("start", "stop"):
            if not callable(getattr(module, hook, None)):
                raise LoadError(code.function.name, where, f"__init__.py defines no {hook}()")
    except BaseException:
        code.purge()
        raise
    code.migrations = migrations_of(folder, code.function.name, where)
    return code


def migrations_of(folder: Path, name: str, where: str) -> list[str]:
    """SQL migrations cannot apply to Rosey's Redis store: warn about each, load anyway."""
    found = sorted(str(p.relative_to(folder)) for p in folder.glob("migrations/*.sql"))
    for rel in found:
        log.warning(
            "plugin %s: %s/%s was NOT applied: Rosey keeps data in Redis through database.*, "
            "which has no SQL tables; the plugin loads without it (see docs/legacy-plugins.md)",
            name,
            where,
            rel,
        )
    return found


def function_of(info: Any, ranks: Mapping[str, float], source: str) -> Function:
    """PLUGIN_INFO as a Function whose commands the router sends to plugin.<name>.command."""
    if not isinstance(info, Mapping):
        raise LoadError("?", source, "PLUGIN_INFO must be a dict with name, version and commands")
    name = info.get("name")
    if not isinstance(name, str) or not name or re.search(r"[\s.*>]", name):
        raise LoadError(
            "?", source, f"PLUGIN_INFO name: expected a subject-safe name, got {name!r}"
        )
    commands = info.get("commands") or []
    if not isinstance(commands, list | tuple) or not all(isinstance(c, str) for c in commands):
        raise LoadError(name, source, "PLUGIN_INFO commands: expected a list of command names")
    usage: Mapping[str, Any] = info.get("usage") or {}
    if not isinstance(usage, Mapping):
        usage = {}
    description = str(info.get("description") or f"Legacy plugin {name}.")
    table: dict[str, Command] = {}
    for raw in commands:
        word = raw.lstrip("!").lower()
        rank = ranks.get(word, 0)
        if rank not in RANKS:
            raise ConfigError(
                "rosey.yaml", f"plugins.ranks.{word}", f"{rank!r} is not a CyTube rank"
            )
        text = usage.get(raw) or usage.get(word)
        table[word] = Command(word, rank=rank, usage=str(text or ""), help=str(text or description))
    return Function(
        name=name,
        version=version_of(info.get("version")),
        description=description,
        commands=table,
        source=source,
    )


def clashes(
    served: Registry, plugins: Sequence[Function], replaces: Collection[str] = ()
) -> list[str]:
    """Every way `plugins` clash with the `served` functions and with each other, one line
    each, naming the plugin, the command and the other function. A plugin may take the place
    of a served function only if its name is in `replaces` (its deployed version)."""
    problems: list[str] = []
    registry = served
    mine: dict[str, Function] = {}
    for plugin in plugins:
        found: list[str] = []
        here = f"plugin {plugin.name!r} ({plugin.source})"
        other = mine.get(plugin.name) or (
            served.get(plugin.name) if plugin.name not in replaces else None
        )
        if other is not None:
            kind = "plugin" if plugin.name in mine else "function"
            found.append(f"{here}: its name is already taken by {kind} ({other.source})")
        for command in plugin.commands.values():
            for word in (command.name, *command.aliases):
                route = registry.resolve(word)
                if route is None or route.function.name == plugin.name:
                    continue
                owner = route.function
                kind = "plugin" if owner.name in mine else "function"
                found.append(
                    f"{here}: command {word!r} is already a command of {kind} "
                    f"{owner.name!r} ({owner.source})"
                )
        problems += found
        if not found:
            registry = registry.replace(plugin)
            mine[plugin.name] = plugin
    return problems


def version_of(raw: Any) -> str:
    """ "1.0" → "1.0.0": Rosey's versions are semantic, the guide's were free-form."""
    text = str(raw or "0.0.0")
    if _SEMVER.match(text):
        text = ".".join([*text.split("."), "0", "0"][:3])
    return text


# Bundles: what `rosey deploy plugins/<name>` ships.


def is_legacy(bundle: Bundle) -> bool:
    return MARKER in bundle.files


def bundle_of(folder: Path, function: Function) -> Bundle:
    """The plugin's files with a generated external manifest (so plans, history and restarts
    treat it like any function) and the marker that says how to run it."""
    if not _NAME.match(function.name):
        raise DeployError(
            function.name,
            "a deployed plugin's name must start with a letter and use only a-z, 0-9, '-' and '_'",
        )
    manifest = {
        "name": function.name,
        "version": function.version,
        "description": function.description,
        "commands": {
            c.name: {"rank": c.rank, **({"usage": c.usage} if c.usage else {})}
            for c in function.commands.values()
        },
    }
    text = "# A legacy plugin package, bundled by `rosey deploy`.\n" + dump_yaml(manifest)
    files = {MARKER: json.dumps({"kind": "legacy", "name": function.name})}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if _SKIP_DIRS & set(rel.parts) or path.suffix == ".pyc":
            continue
        if path.is_dir() and not path.is_symlink():
            continue
        regular_file(path, folder, function.name)  # no symbolic links, FIFOs or devices
        try:
            files[str(rel)] = path.read_text("utf-8")
        except UnicodeDecodeError:
            log.warning(
                "plugin %s: %s is not text and is left out of the bundle", function.name, rel
            )
    return Bundle.create(function.name, function.version, text, files, function.source)


def build_bundle(folder: Path, ranks: Mapping[str, float] | None = None) -> Bundle:
    """Check the package imports (in a throwaway process) and bundle it."""
    info = check(folder)
    function = function_of(info, ranks or {}, f"{display_path(folder)}/__init__.py")
    migrations_of(folder, function.name, display_path(folder))
    return bundle_of(folder, function)


def check(folder: Path, timeout: float = 30.0) -> dict[str, Any]:
    """Import the package in another process; its PLUGIN_INFO, or DeployError with file and line."""
    answer = check_elsewhere(folder.name, ["runtime.legacy.plugin", str(folder)], None, timeout)
    info: dict[str, Any] = answer["info"]
    return info


def _check_here(folder: Path) -> dict[str, Any]:
    logging.disable(logging.WARNING)  # the deploying side reports migrations itself
    try:
        code = load(folder)
    except LoadError as e:
        return {"ok": False, "error": str(e)}
    info = dict(code.module.PLUGIN_INFO)
    code.purge()
    try:
        return {"ok": True, "info": json.loads(json.dumps(info, default=str))}
    except ValueError as e:
        return {"ok": False, "error": f"PLUGIN_INFO is not plain data: {e}"}


def read_info(folder: Path) -> Any:
    """PLUGIN_INFO without running the plugin: the literal in __init__.py, else an import."""
    init = folder / "__init__.py"
    try:
        tree = ast.parse(init.read_text("utf-8"))
    except SyntaxError as e:
        where = f"{display_path(init)}:{e.lineno}"
        raise LoadError(
            folder.name, display_path(folder), f"syntax error at {where}: {e.msg}"
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(folder.name, display_path(folder), f"cannot read __init__.py: {e}") from e
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "PLUGIN_INFO" and node.value is not None:  # type: ignore[attr-defined]
            try:
                return ast.literal_eval(node.value)  # type: ignore[attr-defined]
            except ValueError:
                break
    code = load(folder)
    code.purge()
    return code.module.PLUGIN_INFO


if __name__ == "__main__":
    print(json.dumps(_check_here(Path(sys.argv[1]))))
