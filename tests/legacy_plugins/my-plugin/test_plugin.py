# plugins/my-plugin/test_plugin.py
import pytest
from .plugin import MyPlugin
from tests.conftest import mock_event_bus  # Use global mock

@pytest.mark.asyncio
async def test_plugin_initialization(mock_event_bus):
    plugin = MyPlugin(mock_event_bus)
    assert plugin.event_bus == mock_event_bus

@pytest.mark.asyncio
async def test_command_handler(mock_event_bus):
    plugin = MyPlugin(mock_event_bus)
    await plugin.register()
    
    # Simulate command
    from core.event_bus import Event, Priority
    event = Event(
        subject="plugin.my-plugin.command",
        data={"command": "mycommand", "args": ["test"], "user": "alice"},
        timestamp=123456.0,
        priority=Priority.NORMAL
    )
    
    await plugin.handle_command(event)
    
    # Verify response published
    assert len(mock_event_bus.published_events) == 1
    assert mock_event_bus.published_events[0]["subject"] == "cytube.send.chat"
