"""The websocket at /ws/updates/: events for logged-in users who may see clients."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import ORDERS_GROUP, user_group

#: Close codes the page's script understands (4000-4999 are for applications).
NOT_LOGGED_IN = 4401
NOT_ALLOWED = 4403


@database_sync_to_async
def may_see_orders(user):
    return user.has_perm("crm.view_client") or user.has_perm("crm.view_order")


class UpdatesConsumer(AsyncJsonWebsocketConsumer):
    """Forward order and job events to one browser tab."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        self.groups = [user_group(user.pk)]
        if await may_see_orders(user):
            self.groups.append(ORDERS_GROUP)
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Answer a ping, so the page can tell a live socket from a dead one."""
        if content == {"type": "ping"}:
            await self.send_json({"type": "pong"})

    # Events from the channel layer go to the browser as they are.
    async def order_created(self, event):
        await self.send_json(event)

    async def orders_imported(self, event):
        await self.send_json(event)

    async def job_progress(self, event):
        await self.send_json(event)
