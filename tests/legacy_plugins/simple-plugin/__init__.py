# plugins/simple-plugin/__init__.py
from core.event_bus import EventBus, Event

PLUGIN_INFO = {
    "name": "simple-plugin",
    "version": "1.0.0",
    "commands": ["simple"],
    "description": "Minimal plugin example"
}

_event_bus = None

async def start(event_bus: EventBus):
    global _event_bus
    _event_bus = event_bus
    
    async def handle_command(event: Event):
        await event_bus.publish("cytube.send.chat", {
            "message": "Simple response!"
        })
    
    await event_bus.subscribe("plugin.simple-plugin.command", handle_command)

async def stop(_):
    pass
