# plugins/fortune/__init__.py
"""
Fortune Cookie Plugin - Dispense random fortunes
"""
from core.event_bus import EventBus
from .plugin import FortunePlugin

PLUGIN_INFO = {
    "name": "fortune",
    "version": "1.0.0",
    "commands": ["fortune"],
    "description": "Get a random fortune cookie",
    "usage": {
        "fortune": "!fortune [favorite] - A fortune, or your favorite one"
    }
}

async def start(event_bus: EventBus):
    plugin = FortunePlugin(event_bus)
    await plugin.register()
    return plugin

async def stop(plugin):
    await plugin.cleanup()
