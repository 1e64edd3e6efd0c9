import pytest
from . import start


@pytest.mark.asyncio
async def test_simple_answers(mock_event_bus):
    await start(mock_event_bus)

    await mock_event_bus.publish("plugin.simple-plugin.command", {
        "command": "simple",
        "args": [],
        "user": "alice",
        "channel": "main",
        "rank": 1
    })

    assert mock_event_bus.published_events == [
        {"subject": "cytube.send.chat", "data": {"message": "Simple response!"}}
    ]
