"""Check every API operation against its OpenAPI schema on a live throwaway server."""

from django.core.management.base import BaseCommand, CommandError

from crm.perf.apicheck import ApiCheckError, run


class Command(BaseCommand):
    help = (
        "Serve a throwaway copy of Mini CRM and run schemathesis over the whole "
        "API schema: reads with a team member's token, writes with a staff "
        "token. Fails on any server error or answer that breaks the schema."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-examples", type=int, default=100)

    def handle(self, *args, max_examples, **options):
        try:
            lines = run(max_examples=max_examples, say=self.stdout.write)
        except ApiCheckError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("\n".join(lines))
