# plugins/fortune/test_plugin.py
import pytest
from core.event_bus import Event, Priority
from .plugin import FortunePlugin

@pytest.mark.asyncio
async def test_fortune_plugin_responds(mock_event_bus):
    """Test fortune plugin sends fortune."""
    plugin = FortunePlugin(mock_event_bus)
    await plugin.register()
    
    # Simulate command
    event = Event(
        subject="plugin.fortune.command",
        data={"command": "fortune", "args": [], "user": "alice"},
        timestamp=123456.0,
        priority=Priority.NORMAL
    )
    
    await plugin.handle_command(event)
    
    # Verify response
    assert len(mock_event_bus.published_events) == 1
    response = mock_event_bus.published_events[0]
    assert response["subject"] == "cytube.send.chat"
    assert "🥠" in response["data"]["message"]

@pytest.mark.asyncio
async def test_fortune_plugin_picks_random_fortune(mock_event_bus):
    """Test fortune is random."""
    plugin = FortunePlugin(mock_event_bus)
    await plugin.register()
    
    fortunes = set()
    for _ in range(20):  # Run 20 times
        mock_event_bus.published_events.clear()
        
        event = Event(
            subject="plugin.fortune.command",
            data={"command": "fortune", "args": [], "user": "alice"},
            timestamp=123456.0,
            priority=Priority.NORMAL
        )
        
        await plugin.handle_command(event)
        message = mock_event_bus.published_events[0]["data"]["message"]
        fortunes.add(message)
    
    # Should get at least 3 different fortunes (highly likely)
    assert len(fortunes) >= 3

@pytest.mark.asyncio
async def test_favorite_is_stored(mock_event_bus):
    """The last fortune is kept through database.* and shown by !fortune favorite."""
    plugin = FortunePlugin(mock_event_bus)
    await plugin.register()
    
    await mock_event_bus.publish("plugin.fortune.command", {
        "command": "fortune", "args": ["favorite"], "user": "bob", "rank": 0
    })
    await mock_event_bus.publish("plugin.fortune.command", {
        "command": "fortune", "args": [], "user": "bob", "rank": 0
    })
    await mock_event_bus.publish("plugin.fortune.command", {
        "command": "fortune", "args": ["favorite"], "user": "bob", "rank": 0
    })
    
    messages = [e["data"]["message"] for e in mock_event_bus.published_events]
    assert messages[0] == "🥠 Your favorite: No favorite yet!"
    assert messages[2] == "🥠 Your favorite: " + messages[1].removeprefix("🥠 ")
    stored = await mock_event_bus.db.get("fortune_favorites", "bob")
    assert stored["fortune"] == messages[1].removeprefix("🥠 ")
