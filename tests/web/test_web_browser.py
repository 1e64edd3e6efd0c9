"""The console in a real browser (Debian's Chromium, driven by Playwright): log in, watch a deploy
arrive live, roll it back with the button, resume a quarantined function."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from runtime.web.links import login_url
from tests.echokit import echo_bundle
from tests.web.conftest import TOKEN, Running


async def log_in(page: Any, running: Running) -> None:
    await page.goto(running.url + "/")
    await expect(page).to_have_url(running.url + "/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button:has-text('Log in')")
    await expect(page.locator("h1")).to_have_text("Functions")


async def feed_open(page: Any) -> None:
    await expect(page.locator("body")).to_have_attribute("data-feed", "open")


def version_of(page: Any, name: str) -> Any:
    return page.locator(f"tr[data-function={name}] td.version")


async def test_log_in_and_see_the_shipped_functions(page: Any, running: Running) -> None:
    await page.goto(running.url + "/functions/echo")
    await expect(page.locator("h1")).to_have_text("Log in")
    await page.fill("input[name=token]", "wrong")
    await page.click("button:has-text('Log in')")
    await expect(page.locator(".error")).to_contain_text("not right")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button:has-text('Log in')")
    await expect(page.locator("h1")).to_contain_text("echo")  # where it was going
    await page.click("a:has-text('Functions')")
    await expect(version_of(page, "echo")).to_have_text("1.0.0")
    await expect(version_of(page, "flaky")).to_have_text("0.1.0")
    await expect(page.locator("tr[data-function=echo] td.state")).to_have_text("serving")


async def test_a_login_link_from_rosey_console_logs_in(page: Any, running: Running) -> None:
    await page.goto(login_url(running.url, TOKEN))
    await expect(page.locator("h1")).to_have_text("Functions")
    await expect(version_of(page, "echo")).to_have_text("1.0.0")
    await page.goto(running.url + "/deploys")
    await expect(page.locator("table.runtimes")).to_contain_text("(this one)")


async def test_a_deploy_appears_live_and_the_button_rolls_it_back(
    page: Any, running: Running
) -> None:
    await log_in(page, running)
    await feed_open(page)
    assert (await running.deploy(echo_bundle("1.0.0"), force=True))["success"]
    assert (await running.deploy(echo_bundle("2.0.0")))["success"]
    await expect(version_of(page, "echo")).to_have_text("2.0.0")  # no reload: the live feed
    await running.say("!echo new")
    await running.answers("v2.0.0:new")

    await page.click("a:has-text('echo')")
    await expect(page.locator("#current-version")).to_have_text("2.0.0")
    await page.click("button[data-version='1.0.0']")
    await expect(page.locator(".flash")).to_contain_text("echo: 2.0.0 → 1.0.0")
    await expect(page.locator("#current-version")).to_have_text("1.0.0")
    await running.say("!echo old")
    await running.answers("v1.0.0:old")
    await page.click("a:has-text('Deploys')")
    await expect(page.locator("table.history tbody tr").first).to_contain_text("rollback")
    await expect(page.locator("table.history tbody tr").first).to_contain_text("console (")


async def test_a_quarantined_function_is_shown_and_enabled(page: Any, running: Running) -> None:
    await log_in(page, running)
    await feed_open(page)
    await running.say("!flaky")
    await running.say("!flaky")
    state = page.locator("tr[data-function=flaky] td.state")
    await expect(state).to_contain_text("quarantined")  # live, from the failures' records
    await expect(state).to_contain_text("2 failures within 60s")
    await page.click("a:has-text('flaky')")
    await expect(page.locator("#state")).to_have_text("quarantined")
    await page.click("#enable")
    await expect(page.locator(".flash")).to_contain_text("flaky: resumed on 1 of 1 runtime(s)")
    await expect(page.locator("#state")).to_have_text("serving")
    await expect(page.locator("#enable")).to_have_count(0)


async def test_live_activity_shows_records_and_charts(page: Any, running: Running) -> None:
    await log_in(page, running)
    await page.click("a:has-text('Activity')")
    await expect(page.locator("#feed-state")).to_have_text("live")
    await running.say("!echo seen", user="carol")
    row = page.locator("#feed tbody tr").first
    await expect(row).to_contain_text("carol")
    await expect(row).to_contain_text("!echo")
    await expect(page.locator("svg.chart")).to_have_count(2)
    await expect(page.locator("svg.chart text.label")).to_contain_text(["echo"])
