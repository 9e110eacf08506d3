import gzip
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.management.commands._brand import get_brand
from visibility.crawlers import AccessLogRefused, access_log_import


def read_lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


class Command(BaseCommand):
    help = (
        "Import web-server access logs (combined log format or JSON lines, .gz too) and keep "
        "the requests of AI agents. Importing the same lines again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--skip-bad-lines",
            action="store_true",
            help="Import the readable lines, list the rest.",
        )

    def handle(self, slug, files, skip_bad_lines, **options):
        brand = get_brand(slug)
        sources = []
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file; nothing was imported.")
            sources.append((path.name, read_lines(path)))
        with tqdm(total=len(sources), desc="Reading", unit="file", file=sys.stderr,
                  disable=None if len(sources) > 1 else True) as bar:  # fmt: skip
            try:
                result = access_log_import(
                    brand=brand, sources=sources, skip_bad_lines=skip_bad_lines,
                    progress=bar.update,
                )  # fmt: skip
            except AccessLogRefused as refused:
                raise CommandError(str(refused)) from None
        for line in result.skipped_lines[:20]:
            self.stderr.write(self.style.WARNING(f"Skipped {line}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Read {result.requests} requests: {result.ai_requests} by AI agents, "
                f"{result.created} new, {result.already_imported} already imported"
                + (
                    f"; skipped {len(result.skipped_lines)} unreadable line(s)"
                    if result.skipped_lines
                    else ""
                )
                + "."
            )
        )
