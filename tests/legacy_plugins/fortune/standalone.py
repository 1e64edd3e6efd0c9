# plugins/fortune/standalone.py
import asyncio
import json
import os
from nats.aio.client import Client as NATS
from plugin import FortunePlugin

async def main():
    # Connect to NATS
    nc = NATS()
    await nc.connect(os.environ.get("NATS_URL", "nats://localhost:4222"))
    
    # Wrap NATS client as EventBus
    from core.event_bus import EventBus
    event_bus = EventBus(nc)
    
    # Start plugin
    plugin = FortunePlugin(event_bus)
    await plugin.register()
    
    print("Standalone plugin running...", flush=True)
    
    # Keep running
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
