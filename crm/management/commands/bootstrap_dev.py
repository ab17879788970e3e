"""Prepare a local database: demo data when empty, and an admin login."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from crm.models import Client

USERNAME = "admin"


class Command(BaseCommand):
    help = "Load the demo fixtures into an empty database and ensure a local admin."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("bootstrap_dev is for local development (DEBUG) only.")
        if not Client.objects.exists():
            call_command("loaddata", "demo", verbosity=0)
            self.stdout.write("Loaded the demo clients and orders.")
        User = get_user_model()
        if User.objects.filter(username=USERNAME).exists():
            self.stdout.write(
                f"Log in at http://127.0.0.1:8000/admin/ as '{USERNAME}' with the "
                "password printed when it was created (forgot it? run "
                f"'.venv/bin/python manage.py changepassword {USERNAME}')."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(USERNAME, "admin@localhost", password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the local admin. Log in at http://127.0.0.1:8000/admin/ "
                f"as '{USERNAME}' with password '{password}' (shown only this once)."
            )
        )
