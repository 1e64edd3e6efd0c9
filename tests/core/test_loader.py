import sys
from pathlib import Path
from textwrap import dedent

import pytest

from runtime.config.manifest import Function, parse
from runtime.core import loader
from runtime.errors import LoadError


def function(handler: str = "mod:f") -> Function:
    return parse({"name": "t", "version": "1.0.0", "description": "x", "handler": handler})


def write(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))


def load_error(tmp_path: Path, handler: str = "mod:f") -> str:
    with pytest.raises(LoadError) as info:
        loader.load(function(handler), tmp_path)
    return str(info.value)


def test_fresh_module_name_each_load(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "def f(event, ctx):\n    return 1\n")
    a = loader.load(function(), tmp_path)
    b = loader.load(function(), tmp_path)
    assert a.prefix != b.prefix
    assert a.handler("mod:f") is not b.handler("mod:f")
    assert a.digest == b.digest
    assert f"{a.prefix}.mod" in sys.modules
    a.purge()
    assert f"{a.prefix}.mod" not in sys.modules
    assert f"{b.prefix}.mod" in sys.modules
    b.purge()


def test_digest_follows_content(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "def f(event, ctx):\n    return 1\n")
    a = loader.load(function(), tmp_path)
    write(tmp_path, "mod.py", "def f(event, ctx):\n    return 2\n")
    b = loader.load(function(), tmp_path)
    assert a.digest != b.digest
    assert b.handler("mod:f")(None, None) == 2
    a.purge()
    b.purge()


def test_package_with_relative_import(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "from .impl import f\n")
    write(tmp_path, "pkg/impl.py", "from .util import word\ndef f(event, ctx):\n    return word\n")
    write(tmp_path, "pkg/util.py", "word = 'hi'\n")
    code = loader.load(function("pkg:f"), tmp_path)
    assert code.handler("pkg:f")(None, None) == "hi"
    sub = loader.load(function("pkg.impl:f"), tmp_path)
    assert sub.handler("pkg.impl:f")(None, None) == "hi"
    code.purge()
    sub.purge()


def test_missing_module(tmp_path: Path) -> None:
    assert load_error(tmp_path).endswith("mod.py does not exist")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "x = 1\ndef f(event, ctx)\n    return 1\n")
    message = load_error(tmp_path)
    assert message.startswith("function 't': cannot load mod: syntax error at ")
    assert "mod.py:2: expected ':'" in message
    assert not [m for m in sys.modules if m.startswith("_rosey_fn_t_")]


def test_import_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "x = 1\nimport not_a_real_module_xyz\n")
    message = load_error(tmp_path)
    assert "ModuleNotFoundError at " in message
    assert "mod.py:2: No module named 'not_a_real_module_xyz'" in message


def test_missing_handler(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "def g(event, ctx):\n    pass\n")
    assert load_error(tmp_path).endswith("has no 'f'")


def test_wrong_signature(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "def f(event):\n    pass\n")
    assert load_error(tmp_path).endswith("a handler must accept (event, ctx)")
    write(tmp_path, "mod.py", "f = 3\n")
    assert load_error(tmp_path).endswith("is not callable")


def test_async_detection(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "async def f(event, ctx):\n    pass\ndef g(event, ctx):\n    pass\n")
    code = loader.load(function(), tmp_path)
    assert loader.is_async(code.handler("mod:f"))
    code.purge()


def test_a_bundles_code_carries_the_authors_paths(tmp_path: Path) -> None:
    """A materialized bundle's modules, a package's submodules included, are compiled with
    functions/<file> as their filename (issue 15, item 15); a syntax error says it too."""
    import traceback

    from runtime.core.bundle import Bundle

    text = 'name: t\nversion: "1.0.0"\ndescription: x\nhandler: "pkg:f"\n'
    files = {
        "pkg/__init__.py": "from .impl import f\n",
        "pkg/impl.py": "from .util import g\ndef f(event, ctx):\n    return g()\n",
        "pkg/util.py": "def g():\n    return 1 / 0\n",
    }
    folder = Bundle.create("t", "1.0.0", text, files).materialize(tmp_path / "bundles")
    code = loader.load(function("pkg:f"), folder)
    with pytest.raises(ZeroDivisionError) as info:
        code.handler("pkg:f")(None, None)
    shown = "".join(traceback.format_exception(info.value))
    assert 'File "functions/pkg/impl.py", line 3, in f' in shown
    assert 'File "functions/pkg/util.py", line 2, in g\n    return 1 / 0' in shown
    assert str(folder) not in shown
    module = sys.modules[f"{code.prefix}.pkg.util"]
    assert module.__file__ == str((folder / "pkg" / "util.py").absolute())  # files beside it
    code.purge()
    assert not [p for p in sys.path_importer_cache if p.startswith(str(folder.absolute()))]

    broken = Bundle.create("t", "1.0.0", text, {**files, "pkg/impl.py": "def f(:\n"})
    error = load_error(broken.materialize(tmp_path / "bundles"), "pkg:f")
    assert "syntax error at functions/pkg/impl.py:1" in error


def test_files_on_disk_keep_their_own_paths(tmp_path: Path) -> None:
    write(tmp_path, "mod.py", "def f(event, ctx):\n    return 1 / 0\n")
    code = loader.load(function(), tmp_path)
    with pytest.raises(ZeroDivisionError) as info:
        code.handler("mod:f")(None, None)
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_filename == str(tmp_path / "mod.py")
    code.purge()
