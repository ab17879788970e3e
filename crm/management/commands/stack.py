"""Run compose.yaml's services natively on local PostgreSQL and Redis; check them."""

from django.core.management.base import BaseCommand, CommandError

from crm.perf.stack import StackError, run


class Command(BaseCommand):
    help = (
        "Start compose.yaml's web, worker and beat with their own commands and "
        "environment (on this machine's PostgreSQL and Redis), check health, a "
        "page, a task through the worker and a websocket, then stop them."
    )

    def handle(self, *args, **options):
        try:
            lines = run(say=self.stdout.write)
        except StackError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("\n".join(lines))
