# plugins/fortune/plugin.py
import logging
import random
import time
from typing import List
from core.event_bus import EventBus, Event

logger = logging.getLogger(__name__)

class FortunePlugin:
    """Fortune cookie plugin."""
    
    FORTUNES: List[str] = [
        "You will have a pleasant surprise.",
        "A thrilling time is in your future.",
        "You will make many changes before settling satisfactorily.",
        "Good news will come to you by mail.",
        "Your dearest wish will come true.",
        "You will be successful in your work.",
        "An important person will offer you support."
    ]
    
    def __init__(self, event_bus: EventBus):
        self.event_bus = event_bus
        self.logger = logging.getLogger(__name__)
    
    async def register(self):
        """Register NATS subscriptions."""
        await self.event_bus.subscribe("plugin.fortune.command", self.handle_command)
        self.logger.info("FortunePlugin registered")
    
    async def handle_command(self, event: Event):
        args = event.data.get("args", [])
        
        # !fortune favorite - Show user's favorite
        if args and args[0] == "favorite":
            favorite = await self.get_favorite(event.data["user"])
            await self.event_bus.publish("cytube.send.chat", {
                "message": f"🥠 Your favorite: {favorite}"
            })
            return
        
        # Pick random fortune
        fortune = random.choice(self.FORTUNES)
        
        # Save as favorite
        await self.save_favorite(event.data["user"], fortune)
        
        await self.event_bus.publish("cytube.send.chat", {
            "message": f"🥠 {fortune}"
        })
        
        self.logger.info(f"Dispensed fortune to {event.data.get('user')}")

    async def get_favorite(self, user: str) -> str:
        response = await self.event_bus.request("database.get", {
            "collection": "fortune_favorites",
            "id": user
        })
        
        if response["success"]:
            return response["data"]["fortune"]
        return "No favorite yet!"

    async def save_favorite(self, user: str, fortune: str):
        await self.event_bus.request("database.set", {
            "collection": "fortune_favorites",
            "id": user,
            "data": {"fortune": fortune, "timestamp": time.time()}
        })
    
    async def cleanup(self):
        """Cleanup on shutdown."""
        self.logger.info("FortunePlugin cleanup")
