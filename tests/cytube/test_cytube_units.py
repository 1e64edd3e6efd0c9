import asyncio
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.constants import ErrorCode
from runtime.cytube import matchers, permits
from runtime.cytube.actions import NAME, clean_reason
from runtime.cytube.confirm import Confirmations, Refusal
from runtime.cytube.events import ChannelState, server_rank, strip_html
from runtime.cytube.sendqueue import (
    ZWSP,
    Outgoing,
    Refused,
    SendQueue,
    TokenBucket,
    prepare,
    split_text,
    utf16_len,
)
from runtime.cytube.throttle import Limiter, queue_limits
from tests.cytube_rules import RateLimiter, cut, format_message


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        ("!weather new<em>york</em>city", "!weather newyorkcity"),
        (
            "&lt;b&gt;bold&lt;/b&gt; &amp; \"quotes\" 'apos' (parens)",
            "<b>bold</b> & \"quotes\" 'apos' (parens)",
        ),
        ("use <code>code</code> and <strong>bold</strong>", "use code and bold"),
        (
            '<a href="https://example.com/a_b_c?q=1&amp;r=2" target="_blank">'
            "https://example.com/a_b_c?q=1&amp;r=2</a>",
            "https://example.com/a_b_c?q=1&r=2",
        ),
    ],
)
def test_strip_html(wire: str, text: str) -> None:
    assert strip_html(wire) == text


def test_server_rank_clamps_to_the_contract() -> None:
    assert [server_rank(v) for v in (-1, 1.5, 1000, "2", None, True)] == [-1, 1.5, 255, 0, 0, 0]


def test_split_at_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(100))  # 689 characters
    pieces = split_text(text, 320)
    assert len(pieces) == 3
    assert all(utf16_len(p) <= 320 for p in pieces)
    assert " ".join(pieces) == text
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)


def test_split_never_starts_a_piece_with_a_command() -> None:
    # An earlier space is taken when the later one would leave `/kick` at the start...
    assert split_text("hello there world /kick bob", 20) == ["hello there", "world /kick bob"]
    # ...and when there is none, the piece starts with an invisible U+200B instead.
    assert split_text("a" * 15 + " /kick bob >green", 20) == ["a" * 15, ZWSP + "/kick bob >green"]
    assert split_text("a" * 8 + " >" + "b" * 12, 10) == ["a" * 8, ZWSP + ">" + "b" * 8, "b" * 4]


def test_split_counts_utf16_units_and_cuts_long_words() -> None:
    assert utf16_len("a😀") == 3
    pieces = split_text("😀" * 10, 5)
    assert pieces == ["😀😀", "😀😀", "😀😀", "😀😀", "😀😀"]
    assert split_text("x" * 45, 20) == ["x" * 20, "x" * 20, "x" * 5]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_split_keeps_every_character_within_the_limit(text: str) -> None:
    pieces = split_text(text, 20)
    assert all(0 < utf16_len(p) <= 20 for p in pieces)
    kept = "".join("".join(p.replace(ZWSP, "").split()) for p in pieces)
    assert kept == "".join(text.replace(ZWSP, "").split())


def test_prepare_refuses_commands_and_greentext() -> None:
    for text in ("/kick alice", ">implying", "ok\n/ban bob", "  \n "):
        with pytest.raises(Refused):
            prepare("cytube.send.chat", {"message": text}, 320)


def test_prepare_emote_and_lines() -> None:
    items = prepare("cytube.send.chat", {"message": "waves\n/at you", "emote": True}, 320)
    assert [i.text for i in items] == ["/me waves", "/me /at you"]
    items = prepare("cytube.send.pm", {"to": "bob", "message": "a\tb\n\nc"}, 320)
    assert [(i.kind, i.text, i.to) for i in items] == [("pm", "a b", "bob"), ("pm", "c", "bob")]
    long = prepare("cytube.send.chat", {"message": "w " * 300, "emote": True}, 320)
    assert all(utf16_len(i.text) <= 320 and i.text.startswith("/me ") for i in long)
    assert [(i.part, i.parts) for i in long] == [(1, 2), (2, 2)]


def test_token_bucket_burst_then_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(4, 1.0, clock=lambda: now[0])
    for _ in range(4):
        assert bucket.delay() == 0
        bucket.take()
    assert bucket.delay() == pytest.approx(1.0)
    now[0] = 0.5
    assert bucket.delay() == pytest.approx(0.5)
    now[0] = 10.0
    assert bucket.delay() == 0
    bucket.empty()
    assert bucket.delay() == pytest.approx(1.0)


class FakeLink:
    """Answers each emitted line with the next scripted outcome."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.emitted: list[str] = []
        self.queue: SendQueue | None = None
        self.reports: list[tuple[str, str, str]] = []

    async def wait_ready(self) -> None:
        return None

    def refusal(self, item: Outgoing) -> tuple[str, str] | None:
        return ("not_in_channel", "gone") if item.to == "ghost" else None

    async def emit(self, item: Outgoing) -> None:
        assert self.queue is not None
        self.emitted.append(item.text)
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "ok":
            self.queue.confirmed(item.kind)
        elif outcome == "cooldown":
            self.queue.cooldown(1)
        elif outcome == "lost":
            self.queue.lost()
        elif outcome == "error":
            self.queue.rejected("server_error", "PM failed")

    async def report(self, item: Outgoing, code: str, reason: str) -> None:
        self.reports.append((item.text, code, reason))


async def run_queue(link: FakeLink, payloads: list[tuple[str, dict[str, Any]]], **kw: Any) -> None:
    queue = SendQueue(link, link.report, burst=100, rate=1000, **kw)
    link.queue = queue
    for subject, payload in payloads:
        assert queue.put(prepare(subject, payload, 320))
    task = asyncio.create_task(queue.run())
    try:
        async with asyncio.timeout(10):
            while queue.busy:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()


async def test_queue_resends_after_cooldown_and_loss_in_order() -> None:
    link = FakeLink(["ok", "cooldown", "cooldown", "ok", "lost", "ok"])
    await run_queue(link, [("cytube.send.chat", {"message": m}) for m in ("a", "b", "c")])
    assert link.emitted == ["a", "b", "b", "b", "c", "c"]
    assert link.reports == []


async def test_queue_reports_refusals_errors_and_exhausted_retries() -> None:
    link = FakeLink(["error", "cooldown", "cooldown", "cooldown"])
    await run_queue(
        link,
        [
            ("cytube.send.pm", {"to": "bob", "message": "one"}),
            ("cytube.send.pm", {"to": "ghost", "message": "two"}),
            ("cytube.send.chat", {"message": "three"}),
            ("cytube.send.chat", {"message": "four"}),
        ],
        retries=2,
    )
    assert [(text, code) for text, code, _ in link.reports] == [
        ("one", "server_error"),
        ("two", "not_in_channel"),
        ("three", "cooldown"),
    ]
    assert link.emitted == ["one", "three", "three", "three", "four"]


async def test_queue_bounded() -> None:
    link = FakeLink([])
    queue = SendQueue(link, link.report, size=2)
    assert queue.put(prepare("cytube.send.chat", {"message": "a\nb"}, 320))
    assert not queue.put(prepare("cytube.send.chat", {"message": "c"}, 320))
    await queue.fail_all("stopped", "test over")
    assert [code for _, code, _ in link.reports] == ["stopped", "stopped"]


def test_channel_state_history_echo_and_pseudo_users() -> None:
    chan = ChannelState("test")
    chan.me = "Rosey"
    line = {"username": "alice", "msg": "hi", "meta": {}, "time": 5}
    assert chan.message(line) is None  # before the userlist: history
    chan.userlist([{"name": "alice", "rank": 2}, {"name": "Rosey", "rank": 1}])
    assert chan.message(line) == (
        "cytube.chat",
        {"user": "alice", "message": "hi", "html": "hi", "rank": 2, "channel": "test", "time": 5},
    )
    for name in ("rosey", "[server]", "[voteskip]"):
        assert chan.message({**line, "username": name}) is None
    assert chan.message({**line, "meta": {"shadow": True}}) is None
    _, action = chan.message({**line, "meta": {"action": True}}) or ("", {})
    assert action["emote"] is True


def test_channel_state_users_and_reconnect_diff() -> None:
    chan = ChannelState("test")
    chan.me = "rosey"
    assert chan.userlist([{"name": "alice", "rank": 0}, {"name": "rosey", "rank": 1}]) == []
    [(subject, joined)] = chan.add_user({"name": "bob", "rank": 1})
    assert (subject, joined["user"], joined["rank"]) == ("cytube.user.join", "bob", 1)
    chan.set_user_rank({"name": "BOB", "rank": 2})
    assert chan.rank_of("bob") == 2
    chan.new_connection()
    events = chan.userlist([{"name": "bob", "rank": 2}, {"name": "carol", "rank": 0}])
    assert sorted((s, p["user"]) for s, p in events) == [
        ("cytube.user.join", "carol"),
        ("cytube.user.leave", "alice"),
    ]
    assert chan.user_leave({"name": "carol"}) == [
        ("cytube.user.leave", {"user": "carol", "channel": "test"})
    ]
    assert chan.user_leave({"name": "carol"}) == []


def test_channel_state_media() -> None:
    chan = ChannelState("test")
    chan.playlist([{"uid": 7, "queueby": "alice", "media": {}}])
    chan.set_current(7)
    media = {"id": "abc", "title": "Song", "seconds": 61, "type": "yt"}
    assert chan.change_media(media) == (
        "cytube.media.change",
        {
            "title": "Song",
            "type": "yt",
            "channel": "test",
            "url": "https://youtu.be/abc",
            "duration": 61,
            "queued_by": "alice",
            "id": "abc",
            "uid": 7,
        },
    )
    assert chan.change_media(media) is None  # the same item again after a rejoin


def test_the_fake_server_formats_cuts_and_throttles_as_cytube() -> None:
    # The protocol notes' verified examples: the fake must match them for the tests to mean much.
    assert format_message("<b>bold</b> & \"quotes\" 'apos' (parens)") == (
        "&lt;b&gt;bold&lt;/b&gt; &amp; \"quotes\" 'apos' (parens)"
    )
    assert format_message("!weather new_york_city") == "!weather new<em>york</em>city"
    assert format_message("use `code` and *bold*") == (
        "use <code>code</code> and <strong>bold</strong>"
    )
    link = "https://example.com/a_b_c?q=1&amp;r=2"
    assert format_message("https://example.com/a_b_c?q=1&r=2") == (
        f'<a href="{link}" target="_blank" rel="noopener noreferrer">{link}</a>'
    )
    assert len(cut("x" * 400, 320)) == 320
    limiter = RateLimiter()
    assert [limiter.throttle(20, 10) for _ in range(40)].count(False) == 20


# Channel actions: the pure parts (permissions, the queue throttle, confirmations).


def test_permissions_as_cytube_judges_them() -> None:
    perms = dict(permits.DEFAULTS)
    assert permits.denied(perms, 1.5, "playlistadd") is None
    reason = permits.denied(perms, 1, "playlistadd")
    assert reason == (
        "the channel's 'playlistadd' permission needs rank 1.5 (leader);"
        " the bot has rank 1 (registered)"
    )
    assert permits.denied(perms, 1, "playlistadd", open_playlist=True) is None  # oplaylistadd -1
    assert permits.denied(perms, 1, "playlistdelete", open_playlist=True)  # oplaylistdelete 2
    assert permits.denied({}, 0, "no-such-node")  # unknown: nobody has it
    assert permits.queue_nodes("tw", "next") == ["playlistadd", "playlistnext", "playlistaddlive"]
    assert permits.queue_nodes("fi", "end") == ["playlistadd", "playlistaddrawfile"]
    assert permits.queue_nodes("cu", "end") == [
        "playlistadd",
        "playlistaddlive",
        "playlistaddcustom",
    ]
    assert permits.target_denied("rosey", 2, "alice", 1) is None
    assert "not below" in (permits.target_denied("rosey", 2, "moddy", 2) or "")
    assert permits.target_denied("rosey", 2, "ROSEY", 0)


@given(st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40), st.booleans())
def test_queue_throttle_never_trips_the_servers_limiter(gaps: list[float], moderator: bool) -> None:
    # Actions spaced as the client's limiter says are all accepted by CyTube's own rule
    # (tests/cytube_rules.RateLimiter), even when the latency varies by up to the margin.
    now, jitter = [1000.0], [0.0]
    limiter = Limiter(clock=lambda: now[0])
    server = RateLimiter()
    burst, sustained = queue_limits(2 if moderator else 1)
    server_clock = SimpleNamespace(monotonic=lambda: now[0] + jitter[0])
    with patch("tests.cytube_rules.time", server_clock):
        for n, gap in enumerate(gaps):
            now[0] += gap
            now[0] += limiter.delay(burst, sustained)
            limiter.take(burst, sustained)
            jitter[0] = 0.09 if n % 2 else 0.0
            assert not server.throttle(burst, sustained), (n, gaps)


def test_queue_throttle_limits() -> None:
    now = [0.0]
    limiter = Limiter(clock=lambda: now[0])
    assert queue_limits(1.5) == (3, 1.0) and queue_limits(2) == (10, 2.0)
    for _ in range(3):
        assert limiter.delay(3, 1.0) == 0
        limiter.take(3, 1.0)
    assert limiter.delay(3, 1.0) == pytest.approx(1.1)
    now[0] = 3.2  # quiet for longer than burst/sustained + margin: a new burst
    assert limiter.delay(3, 1.0) == 0


async def test_confirmations_match_refuse_and_time_out() -> None:
    chan = ChannelState("test")
    chan.me = "rosey"
    confirm = Confirmations()
    first = confirm.expect("queue", matchers.queued("yt", "abc", chan))
    second = confirm.expect("queue", matchers.queued("yt", "abc", chan))
    other = confirm.expect("queue", matchers.queued("yt", "xyz", chan))
    item = {"media": {"id": "abc", "title": "T", "seconds": 5, "type": "yt"}, "uid": 4}
    confirm.feed("queue", {"item": {**item, "queueby": "alice"}, "after": 1})  # not the bot's
    assert not first.future.done()
    confirm.feed("queue", {"item": {**item, "queueby": "Rosey"}, "after": 1})
    assert first.future.result()["uid"] == 4 and not second.future.done()  # one per event
    confirm.feed("queueFail", {"msg": "This item is already on the playlist", "id": "abc"})
    with pytest.raises(Refusal) as refused:
        await confirm.wait(second, 1, "the add")
    assert refused.value.code == ErrorCode.INVALID_INPUT
    assert refused.value.message == "This item is already on the playlist"
    with pytest.raises(Refusal) as timed_out:
        await confirm.wait(other, 0.01, "the add of yt:xyz")
    assert timed_out.value.code == ErrorCode.TIMEOUT
    assert "may lack the rank" in timed_out.value.message
    assert confirm.pending == []


def test_moderation_confirmations() -> None:
    chan = ChannelState("test")
    chan.me = "Rosey"

    def whisper(text: str) -> dict[str, Any]:
        return {"username": "[server]", "msg": text, "meta": {}, "time": 1}

    kick = matchers.moderated("kick", "Bob", chan)
    assert kick("chatMsg", whisper("Rosey kicked bob"))
    assert not kick("chatMsg", whisper("Rosey kicked bobby"))
    assert not kick("chatMsg", {**whisper("Rosey kicked bob"), "username": "mallory"})
    assert kick("userLeave", {"name": "bob"})
    mute = matchers.moderated("mute", "bob", chan)
    assert not mute("chatMsg", whisper("Rosey shadowmuted bob"))
    assert mute("setUserMeta", {"name": "bob", "meta": {"muted": True}})
    assert matchers.moderated("smute", "bob", chan)("chatMsg", whisper("Rosey shadowmuted bob"))
    assert matchers.moderated("clear", "", chan)("clearchat", {"clearedBy": "Rosey"})


def test_reasons_are_one_short_line() -> None:
    assert clean_reason("spam\n/ban bob\r\x00 now") == "spam /ban bob now"
    assert len(clean_reason("x" * 1000)) == 200
    assert clean_reason(None) == ""
    assert NAME.match("bob_1-x") and not NAME.match("bob /clear") and not NAME.match("bób")
