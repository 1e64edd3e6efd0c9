# plugins/my-plugin/__init__.py
"""
My Plugin - Does something cool
"""
from core.event_bus import EventBus
from .plugin import MyPlugin

# Plugin metadata (required)
PLUGIN_INFO = {
    "name": "my-plugin",
    "version": "1.0.0",
    "commands": ["mycommand"],
    "description": "Does something cool"
}

# Plugin lifecycle hooks (required)
async def start(event_bus: EventBus) -> MyPlugin:
    """
    Plugin startup hook.
    
    Args:
        event_bus: Connected EventBus instance
    
    Returns:
        Plugin instance (for stop hook)
    """
    plugin = MyPlugin(event_bus)
    await plugin.register()
    return plugin

async def stop(plugin: MyPlugin):
    """
    Plugin shutdown hook.
    
    Args:
        plugin: Plugin instance from start()
    """
    await plugin.cleanup()
