"""The raw echo: every `cytube.chat` message published straight back on `cytube.send.chat`.

`python bench/baselines/echo.py NATS_URL`; prints `ready` once subscribed, stops on SIGTERM.
No JSON, no dispatch: the floor of one request/reply through nats-py and the server.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import nats
from nats.aio.msg import Msg


async def main(url: str) -> None:
    nc = await nats.connect(url, name="bench-echo")

    async def echo(msg: Msg) -> None:
        await nc.publish("cytube.send.chat", msg.data)

    await nc.subscribe("cytube.chat", cb=echo)
    await nc.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
