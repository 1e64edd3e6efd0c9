"""The console's parts that need no server: settings checks, login links, charts, numbers,
and `rosey console`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from click.testing import CliRunner

from runtime.cli.console import console, reachable
from runtime.config.settings import ConsoleSettings, DeploySettings, HttpSettings, Settings
from runtime.errors import ConfigError
from runtime.host import instance
from runtime.web import charts
from runtime.web.auth import COOKIE, Gate, Sessions, public
from runtime.web.links import LinkChecker, login_url
from runtime.web.login import Attempts, local_path
from runtime.web.model import hour_stats, per_minute, percentile


def test_a_console_off_loopback_needs_a_token() -> None:
    exposed = Settings(http=HttpSettings("0.0.0.0:8080"))
    with pytest.raises(ConfigError) as raised:
        exposed.check(plugins=False)
    assert "console.token" in str(raised.value)
    assert "not a loopback address" in str(raised.value)
    Settings(http=HttpSettings("127.0.0.1:8080")).check(plugins=False)
    Settings(http=HttpSettings("[::1]:8080")).check(plugins=False)
    Settings(http=HttpSettings("localhost:8080")).check(plugins=False)
    Settings(http=HttpSettings("0.0.0.0:8080"), console=ConsoleSettings(token="t")).check(
        plugins=False
    )
    Settings(http=HttpSettings("0.0.0.0:8080"), deploy=DeploySettings(token="t")).check(
        plugins=False
    )
    Settings(http=HttpSettings("0.0.0.0:8080"), console=ConsoleSettings(enabled=False)).check(
        plugins=False
    )


def test_a_login_link_is_signed_fresh_and_used_once() -> None:
    url = login_url("http://127.0.0.1:8080/", "tok")
    parts = urlsplit(url)
    assert parts.path == "/login/link"
    assert "tok" not in url
    query = dict(parse_qsl(parts.query))
    checker = LinkChecker("tok")
    assert checker.problem(query) is None
    assert checker.problem(query) == "already used (a replay)"
    assert LinkChecker("other").problem(query) == "not signed with this runtime's deploy token"
    assert LinkChecker("tok").problem({**query, "nonce": "x"}) is not None
    assert LinkChecker("tok").problem({}) == "the link is incomplete"
    later = LinkChecker("tok")
    later.signer.clock = lambda: float(query["issued"]) + 120
    assert "outside the 60s window" in str(later.problem(query))


def test_sessions_expire() -> None:
    now = [1000.0]
    sessions = Sessions(60, clock=lambda: now[0])
    session = sessions.create("127.0.0.1")
    assert sessions.get(session.id) is session
    assert sessions.get("made-up") is None
    now[0] += 61
    assert sessions.get(session.id) is None
    sessions.create()
    assert session.id not in sessions.live


def test_public_paths_and_local_redirects() -> None:
    assert public("/login")
    assert public("/login/link")
    assert public("/static/console.css")
    assert not public("/")
    assert not public("/loginx")
    assert not public("/api/functions")
    assert local_path("/functions/echo?n=5") == "/functions/echo?n=5"
    assert local_path("//evil.example/") == "/"
    assert local_path("https://evil.example/") == "/"


def test_numbers_of_the_last_hour() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0

    def record(function: str, outcome: str, duration: float, at: float) -> dict[str, object]:
        return {
            "function": function,
            "outcome": outcome,
            "duration": duration,
            "error": "",
            "time": at,
        }

    records = [
        record("a", "ok", 0.010, 950),
        record("a", "error", 0.030, 900),
        record("a", "denied", 0.0, 890),
        record("b", "timeout", 1.0, 10),
    ]
    stats = hour_stats(records)
    assert stats["a"]["invocations"] == 2
    assert stats["a"]["errors"] == 1
    assert stats["a"]["denied"] == 1
    assert stats["a"]["p50_ms"] == 10.0
    assert stats["a"]["p99_ms"] == 30.0
    assert stats["a"]["last_error"] == "error"
    assert stats["b"]["errors"] == 1
    assert per_minute(records, now=1000, minutes=3) == [0, 1, 1]  # 100 s ago: the minute before


def test_charts_are_inline_svg_with_names_escaped() -> None:
    svg = charts.bars([1, 0, 3], "Commands per minute")
    assert svg.startswith('<svg class="chart"')
    assert svg.count('<rect class="bar"') == 3
    latency = charts.latency([("<b>", 1.0, 5.0), ("idle", None, None)], "Latency")
    assert "&lt;b&gt;" in latency
    assert "<b>" not in latency
    assert "idle" not in latency
    assert "no invocations yet" in charts.latency([], "Latency")


def test_rosey_console_prints_a_login_link(tmp_path: Path) -> None:
    (tmp_path / "rosey.yaml").write_text("log_level: WARNING\n")
    runner = CliRunner()
    config = str(tmp_path / "rosey.yaml")
    nothing = runner.invoke(console, ["--config", config])
    assert nothing.exit_code == 1
    assert "no running Rosey recorded in" in nothing.output
    settings = Settings(data_dir=tmp_path / ".rosey")
    instance.record(
        settings, instance.Instance("nats://x", None, os.getpid(), "tok", "http://0.0.0.0:8080")
    )
    done = runner.invoke(console, ["--config", config])
    assert done.exit_code == 0, done.output
    url = done.output.splitlines()[0]
    assert url.startswith("http://127.0.0.1:8080/login/link?")
    assert LinkChecker("tok").problem(dict(parse_qsl(urlsplit(url).query))) is None
    assert reachable("http://[::]:9000") == "http://[::1]:9000"
    assert reachable("http://10.0.0.5:9000") == "http://10.0.0.5:9000"


def test_behind_tls_the_session_cookie_is_secure() -> None:
    sessions = Sessions(3600)
    response = web.Response()
    Gate(sessions, secure=True).open(response, sessions.create())
    cookie = response.cookies[COOKIE]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["max-age"] == "3600"
    plain = web.Response()
    Gate(sessions).open(plain, sessions.create())
    assert not plain.cookies[COOKIE]["secure"]


def test_without_chromium_browser_tests_skip_but_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.web import conftest as web_tests

    monkeypatch.setattr(web_tests, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install chromium"):
        web_tests.chromium_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        web_tests.chromium_or_skip()


def test_wrong_tokens_from_one_address_must_wait() -> None:
    attempts = Attempts(limit=3, window=60)
    for _ in range(3):
        assert not attempts.blocked("10.0.0.1")
        attempts.fail("10.0.0.1")
    assert attempts.blocked("10.0.0.1")
    assert not attempts.blocked("10.0.0.2")
