"""Load with a count: chat lines said at a steady rate the way the connector says them, and every
answer collected the way the connector takes them, each command counted by its user."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

from nats.aio.msg import Msg

from runtime.constants import CHAT, MSG_ID
from runtime.cytube.durable import line_id
from runtime.wire.bus import Bus
from runtime.wire.intake import Intake
from runtime.wire.publisher import DurablePublisher
from runtime.wire.streams import SAID_LINES
from tests.clitools import ROSEY, clean_env
from tests.conftest import wait_for

# A function that answers each user with the process that ran it.
PID_FUNCTION = "import os\n\ndef run(event, ctx):\n    return f'{event.user} ok {os.getpid()}'\n"
PID_MANIFEST = (
    'name: pid\nversion: "1.0.0"\ndescription: says who ran it\nhandler: "pid:run"\n'
    "concurrency: 50\ncommands:\n  pid: {}\n"
)
ANSWER = re.compile(r"^(u\d+) ok (\d+)$")


def durable_project(base: Path, nats_url: str, redis_url: str, **delivery: object) -> Path:
    (base / "manifests").mkdir(parents=True, exist_ok=True)
    (base / "functions").mkdir(parents=True, exist_ok=True)
    (base / "manifests" / "pid.yaml").write_text(PID_MANIFEST)
    (base / "functions" / "pid.py").write_text(PID_FUNCTION)
    settings = {
        "log_level": "WARNING",
        "nats": {"url": nats_url, "connect_timeout": 1},
        "redis": {"url": redis_url},
        "delivery": {"ack_wait": 1.0, **delivery},
        "drain_timeout": 2,
    }
    (base / "rosey.yaml").write_text(json.dumps(settings))  # JSON is YAML
    return base


def spawn(project: Path, *args: str, http: str = "off") -> subprocess.Popen[str]:
    """`rosey run --no-console` or `rosey worker`, its stderr kept for the failure message;
    `http`: the HTTP endpoint's address (off by default)."""
    with open(project / f"{args[0]}-{len(os.listdir(project))}.log", "w") as log:
        return subprocess.Popen(
            [ROSEY, *args],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,  # the child has its own copy
            text=True,
            env={**clean_env(), "ROSEY_HTTP_LISTEN": http},
        )


class Load:
    """Says `!pid` as u0, u1, … at `rate` lines per second; counts what comes back."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        js = bus.nc.jetstream()
        self.publisher = DurablePublisher(js, timeout=1.0)
        self.intake = Intake(js, SAID_LINES, self._collect, slots=256, max_age=600, ack_wait=2)
        self.answers: dict[str, set[str]] = defaultdict(set)  # user → distinct reply ids
        self.by: Counter[int] = Counter()  # pid → answers
        self.said = 0
        self.seen_ids: set[str] = set()

    async def start(self) -> None:
        await self.publisher.start()
        await self.intake.start()

    async def stop(self) -> None:
        await self.intake.stop(2)
        await self.publisher.stop(2)

    async def _collect(self, msg: Msg, msg_id: str) -> bool:
        said = (msg.headers or {}).get(MSG_ID, msg_id)
        if said in self.seen_ids:
            return True  # a redelivery of a line already counted, as the connector skips it
        self.seen_ids.add(said)
        found = ANSWER.match(json.loads(msg.data)["message"])
        if found:
            self.answers[found[1]].add(said)
            self.by[int(found[2])] += 1
        return True

    def say(self, i: int) -> None:
        payload = {"user": f"u{i}", "message": "!pid", "channel": "test", "rank": 0, "time": i}
        data = json.dumps(payload).encode()
        self.publisher.put(CHAT, data, line_id(CHAT, payload))
        self.said += 1

    async def run(
        self, count: int, rate: float = 200.0, at: int = -1, fault: object = None
    ) -> None:
        """Say `count` lines at `rate`/s; at line `at`, call `fault()` (a kill, say)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            if i == at and callable(fault):
                result = fault()
                if asyncio.iscoroutine(result):
                    await result
            self.say(i)
            ahead = start + (i + 1) / rate - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing the load, not waiting for anything

    async def settle(self, count: int, timeout: float = 40.0) -> None:
        """Wait until every line is in JetStream and every user has an answer."""
        await wait_for(lambda: self.publisher.pending == 0, timeout=timeout)
        await wait_for(lambda: not self.report(count)[0], timeout=timeout)

    async def warm(self, processes: int, burst: int = 50, first: int = 100_000) -> None:
        """Say bursts of lines (users from `first` on, not counted) until `processes` different
        processes have answered: every one of them is pulling."""
        i = first
        while len(self.by) < processes:
            for _ in range(burst):
                self.say(i)
                i += 1
            last = f"u{i - 1}"
            await wait_for(lambda last=last: last in self.answers, timeout=30)  # type: ignore[misc]

    def report(self, count: int) -> tuple[list[str], list[str]]:
        """(users without an answer, users answered more than once)."""
        lost = [f"u{i}" for i in range(count) if f"u{i}" not in self.answers]
        twice = [u for u, ids in self.answers.items() if len(ids) > 1]
        return lost, twice
