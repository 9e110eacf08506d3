from datetime import timedelta

from django.core.management.base import BaseCommand

from publishing.services import publish_requests_redispatch


class Command(BaseCommand):
    help = (
        "Send pending publish requests (recorded while the broker was down, or left by a "
        "builder that died) to the workers. Beat does this every minute."
    )

    def handle(self, **options):
        sent = publish_requests_redispatch(min_age=timedelta(0))
        self.stdout.write(f"Dispatched {sent} publish request(s).")
