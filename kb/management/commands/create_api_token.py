from django.core.management.base import BaseCommand, CommandError

from kb.management.commands._brand import get_brand
from kb.services.tokens import SCOPES, TokenError, api_token_create


class Command(BaseCommand):
    help = "Create an API token for a brand and print it once (only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            choices=SCOPES,
            help="read, preview, write, publish or manage (webhooks); repeat for several.",
        )
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, slug, scope, name, **options):
        brand = get_brand(slug)
        try:
            token, raw = api_token_create(brand=brand, scopes=scope, name=name)
        except TokenError as error:
            raise CommandError(str(error)) from None
        self.stderr.write(
            f"Token {token.prefix} for {brand.slug} with scopes {', '.join(token.scopes)}. "
            "It is shown only now: store it safely."
        )
        self.stdout.write(raw)
