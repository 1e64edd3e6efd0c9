"""rosey/localnats.py (the test kit's in-process NATS) delivers as a real nats-server does.

One scenario (subscriptions with wildcards and queue groups, then publishes) runs on LocalNats and
on nats-server; both must deliver the same messages to the same subscriptions. A queue group's
members are counted as the group (the server picks one at random); a group is its name, whatever
subjects its members subscribed to.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from rosey.localnats import LocalNats, matches
from tests.conftest import wait_for

# (subject, queue group); "" is a plain subscription.
SUBSCRIPTIONS = [
    ("chat.main", ""),
    ("chat.*", ""),
    ("chat.>", ""),
    (">", ""),
    ("*.main", ""),
    ("*", ""),
    ("chat.*.pm", ""),
    ("chat.main", ""),  # a second plain subscription to one subject gets its own copy
    ("work.jobs", "workers"),
    ("work.jobs", "workers"),
    ("work.jobs", "workers"),
    ("work.*", "workers"),  # the same group on another subject: still one group, one copy
    ("work.*", "workers"),
    ("work.jobs", "auditors"),
    ("work.jobs", ""),
    ("work.>", "all"),
]
PUBLISHES = [
    "chat.main",
    "chat",
    "chat.main.pm",
    "chat.x.pm",
    "chat.x.y.z",
    "main",
    "work.jobs",
    "work.jobs",
    "work.other",
    "work.jobs.late",
    "other.main",
    "nobody.listens.here",
]
END = "end.of.scenario"


async def run_scenario(nc: Any) -> list[list[str]]:
    """For each publish, who received it: `s<i>` for plain subscriptions, `q|<queue>` for a
    queue group (once per member that got it), sorted."""
    got: list[list[str]] = [[] for _ in PUBLISHES]
    ended: list[Msg] = []
    subscriptions = []

    def receiver(i: int, subject: str, queue: str) -> Any:
        name = f"q|{queue}" if queue else f"s{i}"

        async def on_message(msg: Msg) -> None:
            if msg.subject == END:
                return
            got[int(msg.data)].append(name)

        return on_message

    with pytest.raises(NoRespondersError):  # before `>` listens to everything
        await nc.request("nobody.listens.here", b"?", timeout=2)
    for i, (subject, queue) in enumerate(SUBSCRIPTIONS):
        subscriptions.append(await nc.subscribe(subject, queue, cb=receiver(i, subject, queue)))

    async def on_end(msg: Msg) -> None:
        ended.append(msg)

    subscriptions.append(await nc.subscribe(END, cb=on_end))
    for n, subject in enumerate(PUBLISHES):
        await nc.publish(subject, str(n).encode())
    # One connection publishes and receives, so the server delivers in publish order: once END
    # is handled, every earlier message is in its subscription's queue; then wait for the queues.
    await nc.publish(END, b"")
    await nc.flush()
    await wait_for(lambda: bool(ended) and all(s.pending_msgs == 0 for s in subscriptions))
    return [sorted(names) for names in got]


async def test_local_nats_delivers_as_nats_server(nats_url: str) -> None:
    real = await nats.connect(nats_url)
    try:
        on_server = await run_scenario(real)
    finally:
        await real.close()
    local = LocalNats()
    in_process = await run_scenario(local)
    await local.close()
    assert in_process == on_server
    # A queue group spans subjects: `work.jobs` and `work.*` members of "workers" share a copy.
    # The scenario means something: groups got each message once, wildcards matched.
    assert on_server[PUBLISHES.index("work.jobs")] == sorted(
        ["s3", "s14", "q|workers", "q|auditors", "q|all"]
    )
    assert all(
        n == 1 for names in on_server for n in Counter(n for n in names if "|" in n).values()
    )
    assert on_server[-1] == ["s3"]


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        ("*.b", "a.b", True),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("a.b", "a.b", True),
        ("a.b", "a.bc", False),
    ],
)
def test_subject_matching(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected
