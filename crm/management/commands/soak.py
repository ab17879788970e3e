"""Run the production processes under load while Redis, PostgreSQL and a worker fail."""

from django.core.management.base import BaseCommand, CommandError

from crm.perf.soak import SoakError, run


class Command(BaseCommand):
    help = (
        "Serve a throwaway copy (gunicorn, a Celery worker, beat) on its own "
        "PostgreSQL and Redis, load it with wrk, stop and start the services, kill "
        "the worker mid-import, and check that nothing failed or was lost."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=10, help="per phase")
        parser.add_argument("--connections", type=int, default=8)
        parser.add_argument("--clients", type=int, default=2000)
        parser.add_argument("--orders", type=int, default=5000)

    def handle(self, *args, seconds, connections, clients, orders, **options):
        try:
            lines = run(
                seconds=seconds,
                connections=connections,
                clients=clients,
                orders=orders,
                say=self.stdout.write,
            )
        except SoakError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("\n".join(lines))
