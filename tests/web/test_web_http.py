"""The console over HTTP against a real `rosey run`: every route, the login, CSRF, the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from runtime.host import instance
from runtime.web.auth import COOKIE
from runtime.web.journal import TOKEN_HOLDER
from runtime.web.links import login_url
from runtime.web.login import ATTEMPTS
from tests.conftest import wait_for
from tests.echokit import echo_bundle
from tests.web.conftest import TOKEN, Client, Running, start

PAGES = ["/", "/functions/echo", "/activity", "/channel", "/deploys"]
API = ["/api/functions", "/api/functions/echo", "/api/activity", "/api/channel", "/api/deploys"]


async def get_json(client: Client, path: str) -> Any:
    response = await client.http.get(client.url(path))
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def functions(client: Client) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in (await get_json(client, "/api/functions"))["functions"]}


async def test_without_a_session_only_the_login_page_and_static_files_answer(
    client: Client,
) -> None:
    for path in PAGES:
        response = await client.http.get(client.url(path), allow_redirects=False)
        assert response.status == 302, path
        assert response.headers["Location"].startswith("/login"), path
    for path in [*API, "/activity/feed"]:
        response = await client.http.get(client.url(path), allow_redirects=False)
        assert response.status == 401, path
    deep = await client.http.get(client.url("/functions/echo?n=5&user=amy"), allow_redirects=False)
    assert deep.headers["Location"].startswith("/login?next=/functions/echo")
    form = await client.http.get(client.url(deep.headers["Location"]))
    assert 'name="next" value="/functions/echo?n=5&amp;user=amy"' in await form.text()
    login = await client.http.get(client.url("/login"))
    assert login.status == 200
    assert 'name="token"' in await login.text()
    static = await client.http.get(client.url("/static/console.css"))
    assert static.status == 200
    health = await client.http.get(client.url("/healthz"))
    assert health.status == 200  # the operations endpoints stay as they were


async def test_a_post_without_a_session_changes_nothing(client: Client, running: Running) -> None:
    await quarantine(running)
    response = await client.http.post(
        client.url("/functions/flaky/enable"), headers=client.origin, allow_redirects=False
    )
    assert response.status == 302
    assert await paused(running, "flaky")


async def paused(running: Running, name: str) -> bool:
    """Whether `name` is quarantined, as `rosey ls` asks it (rosey.status), not the console."""
    replies = await running.bus.gather("rosey.status", {}, 0.2, expected=1)
    functions = {f["name"]: f for f in replies[0]["data"]["functions"]}
    return bool(functions[name]["status"] == "paused")


async def quarantine(running: Running, name: str = "flaky") -> None:
    await running.say("!" + name)
    await running.say("!" + name)
    await wait_for(lambda: paused(running, name))


async def test_login_with_a_wrong_token_is_refused(client: Client) -> None:
    response = await client.login("not-the-token")
    assert response.status == 403
    assert "not right" in await response.text()
    assert COOKIE not in {c.key for c in client.http.cookie_jar}
    page = await client.http.get(client.url("/api/functions"), allow_redirects=False)
    assert page.status == 401


async def test_guessing_the_token_is_slowed_down(client: Client) -> None:
    for _ in range(ATTEMPTS):
        assert (await client.login("guess")).status == 403
    refused = await client.login()  # even the right one, for a minute
    assert refused.status == 429
    assert "Too many tries" in await refused.text()
    assert COOKIE not in {c.key for c in client.http.cookie_jar}


async def test_login_gives_an_http_only_strict_session_cookie(client: Client) -> None:
    response = await client.login()
    assert response.status == 200
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert "Set-Cookie" in response.headers
    assert client.csrf


async def test_a_login_from_another_origin_is_refused(client: Client) -> None:
    response = await client.http.post(
        client.url("/login"), data={"token": TOKEN}, headers={"Origin": "http://evil.example"}
    )
    assert response.status == 403
    assert COOKIE not in {c.key for c in client.http.cookie_jar}


async def test_a_login_link_works_once(client: Client, running: Running) -> None:
    link = login_url(running.url, TOKEN)
    first = await client.http.get(link)
    assert first.status == 200
    assert COOKIE in {c.key for c in client.http.cookie_jar}
    assert (await client.http.get(client.url("/api/functions"))).status == 200
    client.http.cookie_jar.clear()
    again = await client.http.get(link)
    assert again.status == 403
    assert "already used" in await again.text()
    forged = await client.http.get(login_url(running.url, "a-guessed-token"))
    assert forged.status == 403
    assert COOKIE not in {c.key for c in client.http.cookie_jar}


async def test_every_page_renders(logged_in: Client) -> None:
    for path in PAGES:
        response = await logged_in.http.get(logged_in.url(path))
        assert response.status == 200, path
        assert response.content_type == "text/html"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        text = await response.text()
        assert logged_in.csrf in text, path  # the logout form carries it
    missing = await logged_in.http.get(logged_in.url("/functions/nope"))
    assert missing.status == 404
    bad = await logged_in.http.get(logged_in.url("/functions/echo?n=1000"))
    assert bad.status == 400


async def test_the_functions_json(logged_in: Client, running: Running) -> None:
    await running.say("!echo hi")
    await running.answers("v1.0.0:hi")
    await wait_for(lambda: has_calls(logged_in, "echo"), timeout=10)
    found = await functions(logged_in)
    echo = found["echo"]
    assert echo["version"] == "1.0.0"
    assert echo["commands"] == [{"name": "echo", "rank": 0, "rank_name": "guest"}]
    assert echo["state"] == "serving"
    assert echo["kind"] == "function"
    assert echo["isolation"] == "none"
    assert echo["invocations"] == 1
    assert echo["errors"] == 0
    assert echo["p50_ms"] is not None
    assert echo["p99_ms"] is not None
    assert found["flaky"]["invocations"] == 0
    outside, plugin = found["outside"], found["simple-plugin"]
    assert (outside["kind"], outside["isolation"], outside["version"]) == (
        "external",
        "own process",
        "3.1.0",
    )
    assert outside["commands"] == [{"name": "outside", "rank": 2, "rank_name": "moderator"}]
    assert plugin["kind"] == "legacy plugin"
    assert plugin["commands"][0]["name"] == "simple"


async def has_calls(client: Client, name: str) -> bool:
    return bool((await functions(client))[name]["invocations"])


async def test_a_function_page_has_manifest_versions_and_filtered_records(
    logged_in: Client, running: Running
) -> None:
    await running.say("!echo one", user="amy")
    await running.say("!echo two", user="bob")
    await running.answers("v1.0.0:two")
    await running.answers("v1.0.0:one")

    async def two_records() -> bool:
        data = await get_json(logged_in, "/api/functions/echo")
        return len(data["records"]) == 2

    await wait_for(two_records)
    data = await get_json(logged_in, "/api/functions/echo?user=AMY&n=5")
    assert [r["user"] for r in data["records"]] == ["amy"]
    assert data["filters"] == {"user": "AMY", "n": 5}
    assert "handler: echo:answer" in data["manifest"]
    assert data["versions"] == []  # served from disk: never deployed
    page = await logged_in.http.get(logged_in.url("/functions/echo?user=bob"))
    text = await page.text()
    assert "bob" in text
    assert ">amy<" not in text
    assert "Never deployed" in text


async def test_csrf_is_required_on_every_change(logged_in: Client, running: Running) -> None:
    await quarantine(running)
    url = logged_in.url("/functions/flaky/enable")
    missing = await logged_in.http.post(url, headers=logged_in.origin, allow_redirects=False)
    assert missing.status == 403
    wrong = await logged_in.http.post(
        url, data={"csrf": "x" + logged_in.csrf}, headers=logged_in.origin, allow_redirects=False
    )
    assert wrong.status == 403
    elsewhere = await logged_in.http.post(
        url,
        data={"csrf": logged_in.csrf},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert elsewhere.status == 403
    rollback = await logged_in.http.post(
        logged_in.url("/functions/echo/rollback"), headers=logged_in.origin, allow_redirects=False
    )
    assert rollback.status == 403
    logout = await logged_in.http.post(
        logged_in.url("/logout"), headers=logged_in.origin, allow_redirects=False
    )
    assert logout.status == 403
    assert await paused(running, "flaky")  # none of them did anything


async def test_enable_resumes_a_quarantined_function(logged_in: Client, running: Running) -> None:
    await quarantine(running)
    flaky = (await functions(logged_in))["flaky"]
    assert flaky["state"] == "quarantined"
    assert flaky["reason"].startswith("2 failures within 60s")
    response = await logged_in.http.post(
        logged_in.url("/functions/flaky/enable"),
        data={"csrf": logged_in.csrf},
        headers=logged_in.origin,
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/functions/flaky"
    assert not await paused(running, "flaky")
    page = await logged_in.http.get(logged_in.url("/functions/flaky"))
    assert "flaky: resumed on 1 of 1 runtime(s)" in await page.text()
    assert (await functions(logged_in))["flaky"]["state"] == "serving"


async def test_rollback_goes_back_and_the_journal_says_who(
    logged_in: Client, running: Running
) -> None:
    assert (await running.deploy(echo_bundle("1.0.0"), force=True))["success"]
    assert (await running.deploy(echo_bundle("2.0.0")))["success"]
    await running.say("!echo a")
    await running.answers("v2.0.0:a")
    response = await logged_in.http.post(
        logged_in.url("/functions/echo/rollback"),
        data={"csrf": logged_in.csrf},
        headers={**logged_in.origin, "Accept": "application/json"},
    )
    answer = await response.json()
    assert response.status == 200, answer
    assert answer["message"].startswith("echo: 2.0.0 → 1.0.0")
    await running.say("!echo b")
    await running.answers("v1.0.0:b")
    data = await get_json(logged_in, "/api/functions/echo")
    assert [(v["version"], v["current"]) for v in data["versions"]] == [
        ("1.0.0", True),
        ("2.0.0", False),
    ]

    async def journal() -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = (await get_json(logged_in, "/api/deploys"))["history"]
        return history

    await wait_for(lambda: _length(journal, 3))
    history = await journal()
    assert [(e["action"], e["version"]) for e in history] == [
        ("rollback", "1.0.0"),
        ("deploy", "2.0.0"),
        ("deploy", "1.0.0"),
    ]
    assert history[0]["by"] == "console (127.0.0.1)"
    assert history[1]["by"] == TOKEN_HOLDER
    assert data["versions"][0]["by"] in ("console (127.0.0.1)", TOKEN_HOLDER)


async def _length(read: Any, count: int) -> bool:
    return len(await read()) >= count


async def test_a_refused_rollback_says_why(logged_in: Client) -> None:
    response = await logged_in.http.post(
        logged_in.url("/functions/echo/rollback"),
        data={"csrf": logged_in.csrf},
        headers=logged_in.origin,
    )
    assert response.status == 200  # the function's page, after the redirect
    text = await response.text()
    assert "echo: NOT rolled back (" in text
    assert "no deployed version" in text


async def test_runtimes_and_channel_json(logged_in: Client) -> None:
    deploys = await get_json(logged_in, "/api/deploys")
    assert len(deploys["runtimes"]) == 1
    assert deploys["runtimes"][0]["this"] is True
    assert deploys["runtimes"][0]["functions"] == 4  # echo, flaky, outside, simple-plugin
    channel = await get_json(logged_in, "/api/channel")
    assert channel["connector"] == "console chat"
    assert {"name": "console", "rank": 0, "afk": False} in channel["view"]["users"]
    page = await logged_in.http.get(logged_in.url("/channel"))
    assert "<td>console</td>" in await page.text()


async def test_the_feed_sends_activation_records_as_they_happen(
    logged_in: Client, running: Running
) -> None:
    async with logged_in.http.get(logged_in.url("/activity/feed")) as feed:
        assert feed.status == 200
        assert feed.content_type == "text/event-stream"
        assert (await feed.content.readline()).startswith(b"retry:")
        await running.say("!echo live")
        event = ""
        async for raw in feed.content:
            line = raw.decode().strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "activation":
                record = json.loads(line.split(":", 1)[1])
                assert record["function"] == "echo"
                assert record["outcome"] == "ok"
                assert record["user"] == "alice"
                break


async def test_activity_json_and_charts(logged_in: Client, running: Running) -> None:
    await running.say("!echo x")
    await running.answers("v1.0.0:x")

    async def counted() -> bool:
        data = await get_json(logged_in, "/api/activity?function=echo")
        return sum(data["per_minute"]) == 1 and len(data["records"]) == 1

    await wait_for(counted)
    page = await logged_in.http.get(logged_in.url("/activity"))
    text = await page.text()
    assert '<svg class="chart"' in text
    assert "Commands per minute" in text


async def test_logout_ends_the_session(logged_in: Client) -> None:
    response = await logged_in.http.post(
        logged_in.url("/logout"),
        data={"csrf": logged_in.csrf},
        headers=logged_in.origin,
        allow_redirects=False,
    )
    assert response.status == 303
    page = await logged_in.http.get(logged_in.url("/"), allow_redirects=False)
    assert page.status == 302


async def test_a_console_token_of_its_own_replaces_the_deploy_token(
    tmp_path: Path, nats_url: str, redis_url: str
) -> None:
    settings, task, writer = await start(tmp_path, nats_url, redis_url, token="console-only-token")
    try:
        found = instance.find(settings)
        assert found is not None
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            client = Client(http, found.http)
            assert (await client.login(TOKEN)).status == 403
            assert (await client.login("console-only-token")).status == 200
            # Rollbacks still go out with the deploy token, which the runtime checks.
            response = await http.post(
                client.url("/functions/echo/rollback"),
                data={"csrf": client.csrf},
                headers={**client.origin, "Accept": "application/json"},
            )
            answer = await response.json()
            assert "no deployed version" in answer["message"]
            assert "PERMISSION_DENIED" not in answer["message"]
    finally:
        writer.close()
        assert await task == 0


async def test_with_the_console_off_only_the_operations_endpoints_answer(
    tmp_path: Path, nats_url: str, redis_url: str
) -> None:
    settings, task, writer = await start(tmp_path, nats_url, redis_url, enabled=False)
    try:
        found = instance.find(settings)
        assert found is not None
        async with aiohttp.ClientSession() as http:
            assert (await http.get(found.http + "/healthz")).status == 200
            assert (await http.get(found.http + "/login")).status == 404
            assert (await http.get(found.http + "/", allow_redirects=False)).status == 404
    finally:
        writer.close()
        assert await task == 0
