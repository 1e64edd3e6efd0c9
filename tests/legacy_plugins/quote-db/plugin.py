# plugins/quote-db/plugin.py
import asyncio
import logging
import time
from typing import List
from core.event_bus import EventBus, Event

class QuotePlugin:
    """Quotes kept through the database.* subjects."""

    def __init__(self, event_bus: EventBus):
        self.event_bus = event_bus
        self.logger = logging.getLogger(__name__)

    async def register(self):
        await self.event_bus.subscribe("plugin.quote-db.command", self.handle_command)

    async def send_message(self, message: str):
        await self.event_bus.publish("cytube.send.chat", {
            "message": message
        })

    async def send_pm(self, user: str, message: str):
        await self.event_bus.publish("cytube.send.pm", {
            "to": user,
            "message": message
        })

    async def handle_command(self, event: Event):
        if "user" not in event.data:
            self.logger.error("Missing user in event")
            return

        command = event.data["command"]
        args: List[str] = event.data.get("args", [])
        user = event.data["user"]

        try:
            if command == "quote":
                await self.show_quote(args, user)
            elif command == "addquote":
                await self.add_quote(args, user)
            elif command == "delquote":
                await self.delete_quote(args, event.data.get("rank", 0))
        except asyncio.TimeoutError:
            await self.send_message("❌ Database timeout")

    async def show_quote(self, args: List[str], user: str):
        if args and args[0] == "mine":
            response = await self.event_bus.request("database.query", {
                "collection": "quotes",
                "filter": {"user": user},
                "limit": 10,
                "order_by": "timestamp DESC"
            }, timeout=10)
            if response["success"]:
                quotes = response["data"]
                count = response["count"]
                lines = [f"#{q['id']}: {q['text']}" for q in quotes]
                await self.send_pm(user, f"You have {count} quote(s): " + "; ".join(lines))
            return

        if args and args[0].isdigit():
            response = await self.event_bus.request("database.get", {
                "collection": "quotes",
                "id": int(args[0])
            }, timeout=5)
            if response["success"]:
                quote = response["data"]
                await self.send_message(f"Quote #{quote['id']}: {quote['text']} ({quote['user']})")
            else:
                await self.send_message(f"Error: {response['error']}")
            return

        response = await self.event_bus.request("database.query", {
            "collection": "quotes",
            "limit": 1,
            "order_by": "timestamp DESC"
        }, timeout=10)
        if response["success"] and response["data"]:
            quote = response["data"][0]
            await self.send_message(f"Quote #{quote['id']}: {quote['text']} ({quote['user']})")
        else:
            await self.send_message("No quotes yet.")

    async def add_quote(self, args: List[str], user: str):
        text = " ".join(args)
        if not text:
            await self.send_message("Usage: !addquote <text>")
            return

        # Create new record (id=None for auto-increment)
        response = await self.event_bus.request("database.set", {
            "collection": "quotes",
            "id": None,
            "data": {
                "text": text,
                "user": user,
                "timestamp": time.time()
            }
        }, timeout=5)

        if response["success"]:
            new_id = response["id"]
            self.logger.info(f"Created quote #{new_id}")
            await self.send_message(f"Added quote #{new_id}")
            # Emit event for other plugins to consume
            await self.event_bus.publish("plugin.quote-db.event.quote_added", {
                "event_type": "quote_added",
                "data": {"id": new_id, "user": user}
            })

    async def delete_quote(self, args: List[str], rank: int):
        # Admin-only command
        if rank < 3:
            await self.send_message("❌ This command requires admin privileges")
            return

        if not args or not args[0].isdigit():
            await self.send_message("Usage: !delquote <id>")
            return

        response = await self.event_bus.request("database.delete", {
            "collection": "quotes",
            "id": int(args[0])
        }, timeout=5)

        if response["success"]:
            await self.send_message(f"Deleted quote #{args[0]}")
        else:
            await self.send_message(f"Error: {response['error']}")

    async def cleanup(self):
        self.logger.info("QuotePlugin cleanup")
