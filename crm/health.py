"""What ``/health/`` reports: whether each dependency answers, right now."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection

from . import jobs

OK = "ok"
AWAY = "unavailable"


def database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return AWAY
    return OK


def shared_cache():
    if not hasattr(cache, "ping"):
        return "ok (in this process only: no REDIS_URL)"
    return OK if cache.ping() else f"{AWAY} (pages read the database)"


_broker_checked = (0.0, False)
BROKER_CHECK_EVERY = 5  # seconds: a health check every second opens no connection


def broker():
    global _broker_checked
    if not settings.CELERY_BROKER_URL:
        return "ok (no broker: jobs run in the request)"
    at, available = _broker_checked
    if time.monotonic() - at > BROKER_CHECK_EVERY:
        available = jobs.queue_available()
        _broker_checked = (time.monotonic(), available)
    return OK if available else f"{AWAY} (background jobs cannot start)"


def report():
    """Return ``{dependency: state}``; a state starts with ``ok`` when it answers."""
    return {"database": database(), "cache": shared_cache(), "broker": broker()}
