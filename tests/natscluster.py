"""A NATS cluster of real nats-servers on loopback: routes between every node, for failover tests."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

from runtime.host.servers import EmbeddedNats, free_port
from tests.conftest import wait_for


class NatsCluster:
    """`size` nats-servers routed to each other (cluster `rosey-test`). `url` lists every node,
    as `nats.url` would in production."""

    def __init__(self, workdir: Path, size: int = 3, jetstream: bool = True) -> None:
        self.routes = [free_port() for _ in range(size)]
        self.monitors = [free_port() for _ in range(size)]
        peers = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)
        self.nodes = [
            EmbeddedNats(
                workdir / f"node{i}",
                jetstream=jetstream,
                args=[
                    "--server_name",
                    f"node{i}",
                    "--cluster_name",
                    "rosey-test",
                    "--cluster",
                    f"nats://127.0.0.1:{self.routes[i]}",
                    "--routes",
                    peers,
                    "-m",
                    str(self.monitors[i]),
                ],
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def _routes_of(self, i: int) -> int:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitors[i]}/routez", timeout=1
            ) as r:
                return int(json.load(r)["num_routes"])
        except OSError:
            return -1

    async def formed(self) -> None:
        """Wait until every running node has a route to every other running node."""
        alive = [i for i, node in enumerate(self.nodes) if node.running]
        await wait_for(lambda: all(self._routes_of(i) >= len(alive) - 1 for i in alive), timeout=20)

    def kill(self, i: int) -> None:
        """kill -9 one node: no goodbye to its clients or routes."""
        process = self.nodes[i].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(5)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
