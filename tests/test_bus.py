import pytest

from runtime.errors import BusError
from runtime.host.servers import EmbeddedNats, free_port
from runtime.wire.bus import Bus


async def test_runtime_connect_to_nothing_gives_up_with_a_clear_error() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(BusError) as info:
        await Bus.connect(url, timeout=0.5)
    assert str(info.value).startswith(f"NATS connect failed: {url}")


async def test_request_without_responders(bus: Bus) -> None:
    with pytest.raises(BusError) as info:
        await bus.request("nobody.listens.here", {})
    assert str(info.value) == "NATS request to nobody.listens.here failed: no responders"


async def test_reconnects_after_server_restart(fresh_nats: EmbeddedNats) -> None:
    url = fresh_nats.url
    port = int(url.rsplit(":", 1)[1])
    client = await Bus.connect(url, timeout=1)
    got: list[bytes] = []

    async def on_message(msg: object) -> None:
        got.append(msg.data)  # type: ignore[attr-defined]

    await client.nc.subscribe("ping", cb=on_message)
    fresh_nats.stop()
    fresh_nats.start(port=port)
    other = await Bus.connect(url, timeout=1)
    for _ in range(100):
        await other.nc.publish("ping", b"x")
        await other.flush()
        if got:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert got, "the subscription was not restored after the restart"
    await other.close()
    await client.close()
