"""Measure import, export, changelist and merge speed on a throwaway database."""

from django.core.management.base import BaseCommand, CommandError

from crm.perf.benchmark import format_results, run, run_postgresql


class Command(BaseCommand):
    help = (
        "Build data in a temporary SQLite database (never yours), measure import, "
        "export, the admin changelist and merge against baselines, and print "
        "'name: value' lines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, metavar="N", help="default 100000")
        parser.add_argument("--orders", type=int, metavar="M", help="default 10 x N")
        parser.add_argument(
            "--job-rows",
            type=int,
            metavar="R",
            help="background import job rows (1000000)",
        )
        parser.add_argument(
            "--database-url",
            metavar="URL",
            help="postgres://… of a server: measure changelists and searches in a "
            "new database created there and dropped afterwards (default sizes "
            "1000000 clients, 10 x N orders)",
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="tiny sizes: checks it runs, in seconds",
        )

    def handle(self, *args, clients, orders, quick, job_rows, database_url, **options):
        if (clients is not None and clients < 10) or (
            orders is not None and orders < 0
        ):
            raise CommandError("Use at least 10 clients and no negative orders.")

        def say(message):
            self.stdout.write(f"# {message}")
            self.stdout.flush()

        if database_url:
            if not database_url.startswith(("postgres://", "postgresql://")):
                raise CommandError("--database-url must be a postgres:// URL.")
            results = run_postgresql(
                database_url, clients=clients, orders=orders, quick=quick, say=say
            )
        else:
            results = run(
                clients=clients, orders=orders, quick=quick, job_rows=job_rows, say=say
            )
        self.stdout.write("")
        self.stdout.write(format_results(results))
