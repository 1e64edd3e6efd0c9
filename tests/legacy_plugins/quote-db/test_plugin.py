# plugins/quote-db/test_plugin.py
import pytest
from .plugin import QuotePlugin


def command(name, *args, user="alice", rank=1):
    return {"command": name, "args": list(args), "user": user, "channel": "main", "rank": rank}


@pytest.mark.integration
@pytest.mark.asyncio
async def test_add_show_and_delete(mock_event_bus):
    plugin = QuotePlugin(mock_event_bus)
    await plugin.register()
    added = []
    await mock_event_bus.subscribe("plugin.quote-db.event.*", lambda event: added.append(event.data))

    await mock_event_bus.publish("plugin.quote-db.command", command("addquote", "hello", "there"))
    await mock_event_bus.publish("plugin.quote-db.command", command("addquote", "second", user="bob"))
    await mock_event_bus.publish("plugin.quote-db.command", command("quote"))
    await mock_event_bus.publish("plugin.quote-db.command", command("quote", "1"))
    await mock_event_bus.publish("plugin.quote-db.command", command("quote", "mine"))
    await mock_event_bus.publish("plugin.quote-db.command", command("delquote", "1"))
    await mock_event_bus.publish("plugin.quote-db.command", command("delquote", "1", rank=3))
    await mock_event_bus.publish("plugin.quote-db.command", command("quote", "1"))

    said = [(e["subject"], e["data"]["message"]) for e in mock_event_bus.published_events
            if e["subject"].startswith("cytube.send")]
    assert said == [
        ("cytube.send.chat", "Added quote #1"),
        ("cytube.send.chat", "Added quote #2"),
        ("cytube.send.chat", "Quote #2: second (bob)"),
        ("cytube.send.chat", "Quote #1: hello there (alice)"),
        ("cytube.send.pm", "You have 1 quote(s): #1: hello there"),
        ("cytube.send.chat", "❌ This command requires admin privileges"),
        ("cytube.send.chat", "Deleted quote #1"),
        ("cytube.send.chat", "Error: quotes: no record with id 1"),
    ]
    assert added == [
        {"event_type": "quote_added", "data": {"id": 1, "user": "alice"}},
        {"event_type": "quote_added", "data": {"id": 2, "user": "bob"}},
    ]
    assert await mock_event_bus.db.count("quotes") == 1
