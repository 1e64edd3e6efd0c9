# plugins/my-plugin/plugin.py
import logging
from core.event_bus import EventBus, Event

logger = logging.getLogger(__name__)

class MyPlugin:
    def __init__(self, event_bus: EventBus):
        self.event_bus = event_bus
    
    async def register(self):
        """Register NATS subscriptions."""
        await self.event_bus.subscribe("plugin.my-plugin.command", self.handle_command)
        logger.info("MyPlugin registered")
    
    async def handle_command(self, event: Event):
        """Handle !mycommand."""
        user = event.data.get("user")
        args = event.data.get("args", [])
        
        # Do something cool
        result = f"Hello, {user}!"
        
        # Send response
        await self.event_bus.publish("cytube.send.chat", {
            "message": result
        })
    
    async def cleanup(self):
        """Cleanup on shutdown."""
        logger.info("MyPlugin cleanup")
