"""Rosey's pytest plugin (entry point `rosey`): fixtures for functions and legacy plugins.

- `mock_event_bus`: the plugin guide's test double (rosey/mockbus.py);
- `bot`: the project's manifests and enabled plugins behind the real router (rosey/bot.py);
- `rosey_settings`: the rosey.yaml `bot` uses (override it in a conftest to point elsewhere);
- `core.event_bus` importable in test modules, the `integration` and `plugin` markers, and tests
  inside plugin folders such as plugins/my-plugin/ collected with their relative imports working.

It is loaded by every pytest run where Rosey is installed, so it imports little until used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from runtime.legacy import coreimport

if TYPE_CHECKING:
    from runtime.config.settings import Settings

    from .bot import Bot
    from .mockbus import MockEventBus
    from .testdb import SessionRedis

# Test modules and conftests of plugins import core.event_bus before any hook runs.
coreimport.install()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: a test of a plugin's NATS contract")
    config.addinivalue_line(
        "markers", "plugin: a test inside a legacy plugin package (set automatically)"
    )


def _is_plugin_dir(folder: Path, cache: dict[Path, bool] = {}) -> bool:  # noqa: B006 - a cache
    if folder not in cache:
        from runtime.legacy.plugin import is_plugin_dir

        cache[folder] = is_plugin_dir(folder)
    return cache[folder]


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    # pytest cannot give a module in plugins/my-plugin/ a package ("my-plugin" is no identifier),
    # so `from .plugin import MyPlugin` would fail; such modules are imported here instead.
    folder = module_path.parent
    if folder.name.isidentifier() or not _is_plugin_dir(folder):
        return None
    if parent.config.getoption("importmode") == "importlib":
        return None  # that mode handles it
    return PluginTestModule.from_parent(parent, path=module_path)


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> Any:
    # Same for the folder itself: pytest imports its __init__.py when the package is set up.
    if path.name.isidentifier() or not _is_plugin_dir(path):
        return None
    if parent.config.getoption("importmode") == "importlib":
        return None
    return PluginPackage.from_parent(parent, path=path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.parent
        if any(_is_plugin_dir(p) for p in (folder, folder.parent)):
            item.add_marker(pytest.mark.plugin)


class PluginPackage(pytest.Package):
    """A plugin package whose folder name is not a Python identifier."""

    def setup(self) -> None:
        try:
            import_plugin_package(self.path)
        except Exception as e:
            raise self.CollectError(f"cannot import {self.path}: {type(e).__name__}: {e}") from e


class PluginTestModule(pytest.Module):
    """A test module of a plugin package whose folder name is not a Python identifier."""

    def _getobj(self) -> ModuleType:
        try:
            return import_plugin_test(self.path)
        except Exception as e:
            raise self.CollectError(f"cannot import {self.path}: {type(e).__name__}: {e}") from e


def import_plugin_package(folder: Path) -> ModuleType:
    """Import plugins/<folder>/__init__.py as a package named after the folder."""
    package = folder.name
    existing = sys.modules.get(package)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").parent != folder:
        package = f"{folder.name}@{abs(hash(str(folder))):x}"
        existing = sys.modules.get(package)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(
        package, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"{folder} is not importable")
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[package]
        raise
    return module


def import_plugin_test(path: Path) -> ModuleType:
    """Import plugins/<folder>/<test>.py as a submodule of its plugin package."""
    package = import_plugin_package(path.parent).__name__
    # Through the import system, so pytest's assertion rewriting applies.
    return importlib.import_module(f"{package}.{path.stem}")


@pytest.fixture(scope="session")
def rosey_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionRedis]:
    """The session's redis-server for the database fixtures, started when first used."""
    from .testdb import SessionRedis

    redis = SessionRedis(tmp_path_factory.mktemp("rosey-redis"))
    yield redis
    redis.stop()


@pytest.fixture
def rosey_settings(pytestconfig: pytest.Config, tmp_path: Path) -> Settings:
    """rosey.yaml of the project (pytest's rootdir), with data_dir in the test's tmp_path."""
    from runtime.config.settings import Settings, load

    path = pytestconfig.rootpath / "rosey.yaml"
    settings = load(path) if path.exists() else Settings().resolve(pytestconfig.rootpath)
    settings.data_dir = tmp_path / ".rosey"
    return settings


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures say what is missing when used

    @pytest.fixture(name="mock_event_bus")
    def _no_mock_event_bus() -> None:
        pytest.fail("mock_event_bus needs pytest-asyncio: pip install 'rosey[test]'")

    @pytest.fixture(name="bot")
    def _no_bot() -> None:
        pytest.fail("bot needs pytest-asyncio: pip install 'rosey[test]'")

else:

    @pytest_asyncio.fixture(loop_scope="function")
    async def mock_event_bus(
        rosey_redis: SessionRedis, pytestconfig: pytest.Config
    ) -> AsyncIterator[MockEventBus]:
        """An EventBus for plugin tests: records, delivers, and answers database.*."""
        from .mockbus import MockEventBus

        test_files = [*pytestconfig.getini("python_files"), "conftest.py"]
        bus = MockEventBus(rosey_redis, test_files)
        yield bus
        await bus.aclose()

    @pytest_asyncio.fixture(loop_scope="function")
    async def bot(rosey_settings: Settings, rosey_redis: SessionRedis) -> AsyncIterator[Bot]:
        """The project's functions and enabled plugins; `await bot.say("!cmd")` → replies."""
        from .bot import Bot

        made = Bot(rosey_settings, rosey_redis)
        try:
            await made.start()
            yield made
        finally:
            await made.stop()
