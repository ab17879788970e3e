"""App configuration for Mini CRM."""

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from . import signals, totals  # noqa: F401  (receivers, system checks)
        from .search import register_sqlite_functions

        connection_created.connect(register_sqlite_functions)
