import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.importing import read_path
from kb.management.commands._brand import get_brand
from kb.services.imports import ImportRefused, jsonld_import


class Command(BaseCommand):
    help = (
        "Import schema.org JSON-LD files into a brand. Every file is checked first; any error "
        "imports nothing (or, with --skip-invalid, skips that file). Re-importing is idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--publish", action="store_true", help="Publish what was imported.")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Import the valid files, list the others."
        )

    def handle(self, slug, files, publish, skip_invalid, **options):
        brand = get_brand(slug)
        sources = []
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file; nothing was imported.")
            sources.append(read_path(path))
        bar = None

        def on_plan(total: int) -> None:
            nonlocal bar
            bar = tqdm(
                total=total,
                desc="Importing",
                unit="entity",
                file=sys.stderr,
                disable=None if total >= 50 else True,
            )

        try:
            result = jsonld_import(
                brand=brand,
                sources=sources,
                publish=publish,
                skip_invalid=skip_invalid,
                on_plan=on_plan,
                progress=lambda n: bar.update(n),
            )
        except ImportRefused as refused:
            count = len(refused.problems)
            raise CommandError(
                f"Nothing was imported: {count} problem{'s' if count != 1 else ''} found.\n"
                + "\n".join(str(p) for p in refused.problems)
            ) from None
        finally:
            if bar is not None:
                bar.close()
        for reading in result.skipped_files:
            self.stderr.write(self.style.WARNING(f"Skipped {reading.name}:"))
            for problem in reading.problems:
                self.stderr.write(f"  {problem}")
        summary = (
            f"Imported {result.total} entities into {brand.slug!r}: {len(result.created)} created, "
            f"{len(result.updated)} updated, {len(result.unchanged)} unchanged"
        )
        if publish:
            summary += f", {len(result.published)} published"
        faqs = len(result.faqs_created) + len(result.faqs_updated) + len(result.faqs_unchanged)
        if faqs:  # from FAQPage markup
            summary += (
                f"; {faqs} FAQs: {len(result.faqs_created)} created, "
                f"{len(result.faqs_updated)} updated, {len(result.faqs_unchanged)} unchanged"
            )
            if publish:
                summary += f", {len(result.faqs_published)} published"
        facts = len(result.facts_created) + len(result.facts_updated) + len(result.facts_unchanged)
        if facts:  # from Claim nodes as export_jsonld writes facts
            summary += (
                f"; {facts} facts: {len(result.facts_created)} created, "
                f"{len(result.facts_updated)} updated, {len(result.facts_unchanged)} unchanged"
            )
            if publish:
                summary += f", {len(result.facts_published)} published"
        if result.skipped_files:
            summary += f"; skipped {len(result.skipped_files)} invalid file(s)"
        self.stdout.write(self.style.SUCCESS(summary + "."))
