from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from kb.services.brands import brand_create


class Command(BaseCommand):
    help = "Create a brand (the tenant that owns entities, facts and FAQs)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--base-url", required=True, help="e.g. https://www.example.com")
        parser.add_argument(
            "--language",
            action="append",
            dest="languages",
            help="A language tag; repeat for more. The first is the default. Default: en.",
        )

    def handle(self, slug, name, base_url, languages, **options):
        try:
            brand = brand_create(
                slug=slug, name=name, base_url=base_url, languages=languages or ["en"]
            )
        except ValidationError as error:
            raise CommandError(
                f"Brand {slug!r} was not created: {' '.join(error.messages)}"
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created brand {brand.slug!r} ({brand.name}) at {brand.base_url}, "
                f"languages {', '.join(brand.languages)}."
            )
        )
