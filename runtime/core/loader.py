"""Imports a function's code under a fresh module name, checks its handlers, and purges it again."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import linecache
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from runtime.config.manifest import Function
from runtime.errors import LoadError

Handler = Callable[[Any, Any], Any]

# The file Bundle.materialize writes into a bundle's folder: the folder its files came from, as the
# author knows it ("functions"), which tracebacks show instead of the bundle cache's path.
ORIGIN = ".rosey-origin"


class Loaded(Protocol):
    """Code an Invoker can run: in this process (Code) or in a worker process
    (runtime.isolation.host.Isolated)."""

    function: Function

    def handler(self, target: str) -> Handler: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def purge(self) -> None: ...


@dataclass(slots=True)
class Code:
    """A function's imported handlers, keyed by their `module:function` target."""

    function: Function
    handlers: dict[str, Handler]
    prefix: str
    digest: str
    files: list[Path] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)  # entries of sys.path_importer_cache
    # The modules this load made, when that is all of them (no package, whose submodules can be
    # imported later); None: purge looks through sys.modules for the prefix.
    modules: list[str] | None = None

    def handler(self, target: str) -> Handler:
        return self.handlers[target]

    # The same life as runtime.isolation.host.Isolated, which runs the handlers in a worker process.
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def purge(self) -> None:
        """Forget the modules this load created; running invocations keep their references."""
        names = self.modules
        if names is None:  # a scan of every module: with many functions, purging each is O(n)
            names = [m for m in sys.modules if m == self.prefix or m.startswith(self.prefix + ".")]
        for name in names:
            sys.modules.pop(name, None)
        forget_folders(self.folders)


def module_file(functions_dir: Path, module: str) -> Path:
    """functions/<module>.py, or functions/<module>/__init__.py for a package."""
    top = module.split(".")[0]
    package = functions_dir / top / "__init__.py"
    return package if package.exists() else functions_dir / f"{top}.py"


def source_files(functions_dir: Path, function: Function) -> list[Path]:
    files: set[Path] = set()
    for target in function.handler_targets():
        path = module_file(functions_dir, target.split(":")[0])
        files |= set(path.parent.rglob("*.py")) if path.name == "__init__.py" else {path}
    return sorted(files)


def digest(function: Function, files: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(repr(function).encode())
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()


def load(function: Function, functions_dir: Path) -> Code:
    """Import every handler the manifest names; raises LoadError with file and line."""
    prefix = f"_rosey_fn_{function.name.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
    files = source_files(functions_dir, function)
    code = Code(function, {}, prefix, digest(function, files), files)
    tops: dict[str, ModuleType] = {}
    try:
        shown = origin(functions_dir)
        if shown is not None:
            code.folders = author_paths(functions_dir, shown)
        for target in sorted(function.handler_targets()):
            module_name, attr = target.split(":")
            module = _import(function, functions_dir, module_name, prefix, tops)
            handler = getattr(module, attr, None)
            if handler is None:
                raise LoadError(function.name, target, f"{_where(module)} has no {attr!r}")
            _check_signature(function, target, handler)
            code.handlers[target] = handler
        if not any(hasattr(module, "__path__") for module in tops.values()):
            code.modules = [f"{prefix}.{top}" for top in tops]
    except BaseException:
        code.purge()
        raise
    return code


def _import(
    function: Function, functions_dir: Path, module: str, prefix: str, tops: dict[str, ModuleType]
) -> ModuleType:
    top, _, rest = module.partition(".")
    if top not in tops:
        path = module_file(functions_dir, top)
        if not path.exists():
            raise LoadError(function.name, module, f"{path} does not exist")
        is_package = path.name == "__init__.py"
        name = f"{prefix}.{top}"
        spec = importlib.util.spec_from_file_location(
            name,
            path,
            loader=source_loader(name, path, functions_dir),
            submodule_search_locations=[str(path.parent.absolute())] if is_package else None,
        )
        if spec is None or spec.loader is None:
            raise LoadError(function.name, module, f"{path} is not importable")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        execute(function.name, module, lambda: spec.loader.exec_module(loaded))  # type: ignore[union-attr]
        tops[top] = loaded
    if not rest:
        return tops[top]
    result: list[ModuleType] = []
    execute(
        function.name, module, lambda: result.append(importlib.import_module(f"{prefix}.{module}"))
    )
    return result[0]


# Tracebacks with the author's paths. A bundle is served from data_dir/bundles/<name>/<hash>/; its
# code is compiled with the path its files had on the author's side (functions/hello.py) as the
# code objects' filename, and that source is put in linecache, so a traceback shows the author's
# file and the deployed line. Modules keep their real __file__ (for files next to the code).


def origin(folder: Path) -> str | None:
    """The author's name for `folder` when it is a materialized bundle, else None."""
    try:
        return (folder / ORIGIN).read_text("utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class AuthorLoader(SourceFileLoader):
    """Source files compiled with `shown` + their path below `root` as their filename."""

    def __init__(self, fullname: str, path: str, root: Path, shown: str) -> None:
        super().__init__(fullname, path)
        self.root, self.shown = root.absolute(), shown

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        shown = f"{self.shown}/{Path(path).absolute().relative_to(self.root).as_posix()}"
        text = importlib.util.decode_source(source)
        linecache.cache[shown] = (len(text), None, text.splitlines(True), shown)
        return compile(source, shown, "exec", dont_inherit=True)


def source_loader(name: str, path: Path, folder: Path, shown: str | None = None) -> Any:
    """The loader of a top module in `folder`: an AuthorLoader in a bundle, else the default."""
    shown = shown or origin(folder)
    if shown is None:
        return None
    return AuthorLoader(name, str(path), folder, shown)


def author_paths(folder: Path, shown: str) -> list[str]:
    """Make the submodules of packages in `folder` load with AuthorLoader too: a finder for each
    of its directories in sys.path_importer_cache, which imports consult for a package's
    __path__. Returns the entries, for forget_folders."""
    entries = []
    folder = folder.absolute()  # importlib.invalidate_caches() drops relative entries
    # FileFinder calls loader(fullname, path); its stubs want a Loader class.
    make: Any = lambda fullname, path: AuthorLoader(fullname, path, folder, shown)  # noqa: E731
    for directory in [folder, *(p for p in sorted(folder.rglob("*")) if p.is_dir())]:
        sys.path_importer_cache[str(directory)] = FileFinder(
            str(directory), (make, SOURCE_SUFFIXES)
        )
        entries.append(str(directory))
    return entries


def forget_folders(entries: list[str]) -> None:
    for entry in entries:
        sys.path_importer_cache.pop(entry, None)


def execute(name: str, module: str, run: Callable[[], Any]) -> None:
    """Run an import step; any failure becomes a LoadError naming the file and line."""
    try:
        run()
    except SyntaxError as e:
        where = f"{e.filename}:{e.lineno}" if e.filename else "?"
        raise LoadError(name, module, f"syntax error at {where}: {e.msg}") from e
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)
        own = [f for f in frames if "importlib" not in f.filename] or frames
        where = f" at {own[-1].filename}:{own[-1].lineno}" if own else ""
        raise LoadError(name, module, f"{type(e).__name__}{where}: {e}") from e


def _where(module: ModuleType) -> str:
    return getattr(module, "__file__", None) or module.__name__


def _check_signature(function: Function, target: str, handler: Any) -> None:
    if not callable(handler):
        raise LoadError(function.name, target, "is not callable")
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError as e:
        raise LoadError(function.name, target, "a handler must accept (event, ctx)") from e
    except ValueError:
        return  # builtins without a signature: trust them


def is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )
