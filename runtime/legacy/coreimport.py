"""Makes `import core.event_bus` resolve to Rosey's compatibility module, for legacy plugins.

Installed by the runtime before it loads a legacy plugin, by the `rosey.testing` pytest plugin,
and at interpreter start-up by the `rosey-core.pth` file the package installs (so a standalone
plugin process finds it too). The finder goes last on sys.meta_path: a project's own `core`
package, or its own `core/event_bus.py`, still wins. The .pth carries a copy of this module's
source (build_hooks.py), so start-up imports no Rosey module: keep it standard library only,
and import Rosey lazily.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

ALIASES = {"core.event_bus": "runtime.legacy.event_bus"}


class _Alias(Loader):
    """Loads a name as another name's module object, so both share one set of classes."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        return None


class _EmptyPackage(Loader):
    """`core` itself, when nothing else provides it: a package holding only the aliases."""

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__doc__ = "Rosey's stand-in for the original `core` package (legacy plugins)."


class CoreFinder(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in ALIASES:
            return ModuleSpec(fullname, _Alias(ALIASES[fullname]))
        if fullname == "core":
            spec = ModuleSpec(fullname, _EmptyPackage(), is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None


def install() -> None:
    """Idempotent. By class name: the .pth installs a copy of this module's code."""
    if not any(type(finder).__name__ == "CoreFinder" for finder in sys.meta_path):
        sys.meta_path.append(CoreFinder())
