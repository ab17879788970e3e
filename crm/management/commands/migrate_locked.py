"""Migrate under a database lock, so that several starting replicas migrate once."""

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

# Any fixed number: the PostgreSQL advisory lock all replicas of this site take.
LOCK_ID = 4_242_017


class Command(BaseCommand):
    help = (
        "Run migrate while holding a PostgreSQL advisory lock: replicas that "
        "start together wait for the first, then find nothing left to do."
    )

    def add_arguments(self, parser):
        parser.add_argument("--noinput", "--no-input", action="store_true")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, noinput, database, verbosity, **options):
        connection = connections[database]
        locked = connection.vendor == "postgresql"
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_ID])
        try:
            call_command(
                "migrate",
                database=database,
                interactive=not noinput,
                verbosity=verbosity,
            )
        finally:
            if locked:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])
