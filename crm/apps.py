"""App configuration for Mini CRM."""

from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from . import signals  # noqa: F401
