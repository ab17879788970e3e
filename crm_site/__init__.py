"""Mini CRM's Django project; the Celery app loads with it, so tasks find their app."""

from .celery import app as celery_app

__all__ = ("celery_app",)
