"""setuptools commands that also install rosey-core.pth (pyproject.toml's tool.setuptools.cmdclass).

The .pth runs runtime.coreimport.install() when Python starts, so `from core.event_bus import
EventBus` works in any process of the environment, such as a standalone legacy plugin started
with `python plugins/my-plugin/standalone.py`. Build-time only: not part of the installed package.
"""

from __future__ import annotations

from pathlib import Path

from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = "rosey-core.pth"


def pth_line() -> str:
    """One line, as .pth files require: runtime/legacy/coreimport.py's code, run in a namespace of its
    own. Importing Rosey's modules here would make pytest warn that it cannot rewrite them."""
    source = Path(__file__).with_name("runtime").joinpath("legacy", "coreimport.py").read_text("utf-8")
    return f"import sys; exec({source + chr(10) + 'install()' + chr(10)!r}, {{'__name__': 'rosey_core_pth'}})\n"


class BuildPy(build_py):
    """Wheels (`pip install .`): the .pth goes to the root of site-packages."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            Path(self.build_lib, PTH_NAME).write_text(pth_line())


class EditableWheel(editable_wheel):
    """Editable installs (`pip install -e .`): the .pth goes into the editable wheel."""

    def _install_namespaces(self, installation_dir, pth_prefix):  # type: ignore[no-untyped-def]
        super()._install_namespaces(installation_dir, pth_prefix)
        # Sorts after setuptools' own __editable__ .pth, which makes `runtime` importable.
        Path(installation_dir, PTH_NAME).write_text(pth_line())
