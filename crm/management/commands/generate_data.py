"""Fill the database with synthetic clients and orders."""

import time

from django.core.management.base import BaseCommand, CommandError

from crm.perf.generate import generate_data

PROGRESS_EVERY = 100_000


class Command(BaseCommand):
    help = "Insert N synthetic clients and M orders (bulk inserts, realistic values)."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=1000, metavar="N")
        parser.add_argument("--orders", type=int, default=10_000, metavar="M")
        parser.add_argument("--seed", type=int, default=None, metavar="S")

    def handle(self, *args, clients, orders, seed, verbosity, **options):
        if clients < 0 or orders < 0:
            raise CommandError("--clients and --orders must not be negative.")
        started = time.perf_counter()

        def progress(label, done, total):
            if (
                verbosity
                and total >= PROGRESS_EVERY
                and (done % PROGRESS_EVERY == 0 or done == total)
            ):
                self.stdout.write(f"  {label}: {done:,}/{total:,}")

        try:
            generate_data(clients, orders, seed=seed, progress=progress)
        except ValueError as error:
            raise CommandError(str(error)) from error
        seconds = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {clients:,} clients and {orders:,} orders "
                f"in {seconds:.1f} s."
            )
        )
