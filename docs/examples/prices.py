"""A live price feed: only the newest price matters, so a slow client skips old ones."""

from hub.exceptions import DenyConnection
from hub.generic.websocket import AsyncJsonWebsocketConsumer
from hub.outbound import OutboundPolicy


class TickerConsumer(AsyncJsonWebsocketConsumer):
    groups = ["prices"]  # joined before connect(), left when the consumer ends
    outbound_policy = OutboundPolicy.DROP_OLDEST
    outbound_queue_size = 10

    async def connect(self):
        if "ticker.v1" not in self.scope["subprotocols"]:
            raise DenyConnection
        await self.accept(subprotocol="ticker.v1")

    async def price_update(self, event):
        await self.send_json({"symbol": event["symbol"], "price": event["price"]})
