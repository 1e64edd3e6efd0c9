# plugins/my-plugin/test_integration.py
import pytest
from .plugin import MyPlugin

@pytest.mark.integration
@pytest.mark.asyncio
async def test_plugin_responds_to_command(mock_event_bus):
    plugin = MyPlugin(mock_event_bus)
    await plugin.register()
    
    # Simulate full command flow
    await mock_event_bus.publish("plugin.my-plugin.command", {
        "command": "mycommand",
        "args": [],
        "user": "alice",
        "channel": "main",
        "rank": 1
    })
    
    # Verify response
    assert len(mock_event_bus.published_events) == 1
    response = mock_event_bus.published_events[0]
    assert response["subject"] == "cytube.send.chat"
    assert "Hello" in response["data"]["message"]
