from django.core.management.base import BaseCommand

from kb.services.workflow import publish_scheduled


class Command(BaseCommand):
    help = "Publish revisions whose go-live time has come and unpublish expired ones."

    def handle(self, **options):
        counts = publish_scheduled()
        self.stdout.write(f"Published {counts['published']}, expired {counts['expired']}.")
