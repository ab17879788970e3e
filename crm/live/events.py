"""Send live events to open pages: one function per event, always after commit."""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from ..formatting import format_money

logger = logging.getLogger(__name__)

#: Everyone who may see clients and orders listens here.
ORDERS_GROUP = "orders"
_last_warning = 0.0


def user_group(user_id):
    """The group of one user's open pages (their jobs' progress)."""
    return f"user-{user_id}"


def _send(group, message):
    """Hand a message to the channel layer; a layer that is away costs nothing."""
    global _last_warning
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # Live updates are a convenience: the write that caused them stands.
        if time.monotonic() - _last_warning > 60:
            _last_warning = time.monotonic()
            logger.warning("Live updates are unavailable", exc_info=True)


def order_created(order):
    """Tell every open list about a new order, once its transaction commits."""
    client = order.client
    message = {
        "type": "order.created",
        "order": {
            "id": order.pk,
            "title": order.title,
            "amount": format_money(order.amount),
            "status": order.status,
        },
        "client": {"id": client.pk, "name": client.name, "email": client.email},
    }
    transaction.on_commit(lambda: _send(ORDERS_GROUP, message))


def orders_imported(count):
    """Tell every open list that an import added ``count`` orders (one message)."""
    message = {"type": "orders.imported", "count": count}
    transaction.on_commit(lambda: _send(ORDERS_GROUP, message))


def job_progress(job_id, user_id, state, done, total):
    """Tell the job's owner how far it has come (sent at once: outside any import)."""
    if user_id is None:
        return
    _send(
        user_group(user_id),
        {
            "type": "job.progress",
            "job": {"id": job_id, "state": state, "done": done, "total": total},
        },
    )
