"""The `echo` test function (it says which version answered), for deploy and console tests."""

from __future__ import annotations

from textwrap import dedent

from runtime.core.bundle import Bundle


def echo_manifest(version: str, extra: str = "") -> str:
    return dedent(f"""\
        name: echo
        version: "{version}"
        description: Says which version answered.
        handler: echo:answer
        commands:
          echo: {{}}
        """) + dedent(extra)


def echo_code(version: str) -> str:
    return f"def answer(event, ctx):\n    return 'v{version}:' + event.text\n"


def echo_bundle(version: str, code: str | None = None, extra: str = "") -> Bundle:
    return Bundle.create(
        "echo",
        version,
        echo_manifest(version, extra),
        {"echo.py": code if code is not None else echo_code(version)},
    )
