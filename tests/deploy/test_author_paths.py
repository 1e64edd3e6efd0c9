"""Tracebacks of deployed functions show the author's paths (functions/boom.py), not the bundle
cache's (.rosey/bundles/<name>/<hash>/boom.py), in process and in an isolated worker
(issue 15, item 15)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from runtime.core.bundle import Bundle
from runtime.deploy.service import DeployService
from runtime.wire.bus import Bus
from tests.conftest import Chat, MakeRuntime

TOKEN = "s3cret"
CODE = """\
import logging

log = logging.getLogger("rosey.fn.boom")


def answer(event, ctx):
    try:
        return helper()
    except ZeroDivisionError:
        log.exception("caught it")
        raise


def helper():
    return 1 / 0  # the deployed line
"""


def boom(isolation: str) -> Bundle:
    text = (
        'name: boom\nversion: "2.0.0"\ndescription: fails\nhandler: boom:answer\n'
        f"isolation: {isolation}\ncommands:\n  boom: {{}}\n"
    )
    return Bundle.create("boom", "2.0.0", text, {"boom.py": CODE}, "manifests/boom.yaml")


@pytest.mark.parametrize("isolation", ["none", "process"])
async def test_a_deployed_functions_traceback_shows_the_authors_path(
    make_runtime: MakeRuntime,
    bus: Bus,
    chat: Chat,
    caplog: pytest.LogCaptureFixture,
    isolation: str,
) -> None:
    caplog.set_level(logging.INFO)
    runtime = await make_runtime({})
    service = DeployService(runtime, runtime.bus, TOKEN, None, ack_window=0.05)
    await service.start()
    try:
        shipped = boom(isolation)
        request = {"token": TOKEN, "action": "deploy", "bundle": json.loads(shipped.to_json())}
        reply: dict[str, Any] = await bus.request("rosey.deploy", request, timeout=20)
        assert reply["success"], reply
        before = len(chat.sent)
        await chat.say("!boom")
        assert (await chat.lines(before + 1))[-1] == "Sorry, boom failed."
    finally:
        await service.stop()
    [traceback] = [
        r.exc_text or logging.Formatter().formatException(r.exc_info)
        for r in caplog.records
        if r.getMessage() == "caught it" and (r.exc_text or r.exc_info)
    ]
    assert 'File "functions/boom.py", line 8, in answer' in traceback
    assert 'File "functions/boom.py", line 15, in helper' in traceback
    assert "return 1 / 0  # the deployed line" in traceback  # the deployed source
    assert "bundles" not in traceback and shipped.hash not in traceback
