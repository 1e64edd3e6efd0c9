# plugins/quote-db/__init__.py
"""
Quote DB Plugin - Remember and recall quotes, through database.* over NATS
"""
from core.event_bus import EventBus
from .plugin import QuotePlugin

PLUGIN_INFO = {
    "name": "quote-db",
    "version": "1.0.0",
    "commands": ["quote", "addquote", "delquote"],
    "description": "Remember and recall quotes",
    "usage": {
        "quote": "!quote [id|mine] - The latest quote, one by id, or yours by PM",
        "addquote": "!addquote <text> - Remember a quote",
        "delquote": "!delquote <id> - Forget a quote (admins)"
    }
}

async def start(event_bus: EventBus):
    plugin = QuotePlugin(event_bus)
    await plugin.register()
    return plugin

async def stop(plugin):
    await plugin.cleanup()
