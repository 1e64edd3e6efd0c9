"""`rosey run` on a 3-node NATS cluster: given every node, it survives the loss of the one it uses."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path

from runtime.wire.bus import Bus
from tests.clitools import start_server
from tests.conftest import Chat, wait_for
from tests.natscluster import NatsCluster


def _node_of(cluster: NatsCluster, name: str) -> int | None:
    """The node a client named `name` is connected to, by the nodes' monitoring endpoints."""
    for i, node in enumerate(cluster.nodes):
        if not node.running:
            continue
        url = f"http://127.0.0.1:{cluster.monitors[i]}/connz?limit=1024"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                connections = json.load(r).get("connections") or []
        except OSError:
            continue
        if any(c.get("name") == name for c in connections):
            return i
    return None


async def _answered(chat: Chat, user: str) -> bool:
    """Say `!roll 2d6` as `user`; True once the reply to that line is back (within a second)."""
    await chat.say("!roll 2d6", user=user)
    try:
        async with asyncio.timeout(1):
            while not any(p["message"].startswith(f"{user} rolled") for _, p in chat.sent):
                await chat.replies(len(chat.sent) + 1, timeout=1)
    except TimeoutError:
        return False
    return True


async def test_rosey_run_fails_over_to_another_node(
    tmp_path: Path, project: Path, redis_url: str
) -> None:
    cluster = NatsCluster(tmp_path / "cluster")
    cluster.start()
    server = None
    try:
        await cluster.formed()
        (project / "rosey.yaml").write_text(
            f"nats:\n  url: {cluster.url}\n  connect_timeout: 1\nredis:\n  url: {redis_url}\n"
            "delivery:\n  replicas: 3\n"
        )
        server = start_server(project, "--no-console")
        assert server.poll() is None, "rosey run ended at start"
        await wait_for(lambda: _node_of(cluster, "rosey-runtime") is not None)
        used = _node_of(cluster, "rosey-runtime")
        assert used is not None
        other = next(i for i in range(3) if i != used)
        bus = await Bus.connect(cluster.nodes[other].url, name="test-chat")
        try:
            chat = Chat(bus)
            await chat.start()
            # Across a route: the line is said on another node than the one Rosey uses.
            await wait_for(lambda: _answered(chat, "before"), timeout=20)

            cluster.kill(used)
            await wait_for(lambda: _node_of(cluster, "rosey-runtime") not in (None, used))
            await wait_for(lambda: _answered(chat, f"after{len(chat.sent)}"), timeout=20)
            assert server.poll() is None, "rosey run died with its node"
        finally:
            await bus.close()
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            code = server.wait(20)
            if server.stdin is not None:
                server.stdin.close()
        cluster.stop()
    assert code == 0
