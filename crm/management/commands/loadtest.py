"""Load-test gunicorn on loopback with wrk and print requests/s ratios."""

from django.core.management.base import BaseCommand, CommandError

from crm.perf.loadtest import LoadTestError, run


class Command(BaseCommand):
    help = (
        "Serve a throwaway copy of Mini CRM with gunicorn on loopback, load it "
        "with wrk and print requests/s against a trivial view."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int, default=10)
        parser.add_argument("--connections", type=int, default=8)
        parser.add_argument("--clients", type=int, default=20_000)
        parser.add_argument("--orders", type=int, default=100_000)
        parser.add_argument(
            "--sockets", type=int, default=200, help="websockets for the fan-out"
        )

    def handle(self, *args, seconds, connections, clients, orders, sockets, **options):
        try:
            lines = run(
                seconds=seconds,
                connections=connections,
                clients=clients,
                orders=orders,
                sockets=sockets,
                say=self.stdout.write,
            )
        except LoadTestError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("\n".join(lines))
