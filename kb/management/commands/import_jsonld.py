import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.importing import read_path
from kb.management.commands._brand import get_brand
from kb.services.imports import ImportRefused, ImportResult, jsonld_import

OUTCOMES = ("created", "updated", "unchanged", "published")


class Command(BaseCommand):
    help = (
        "Import schema.org JSON-LD files into a brand. Every file is checked first; any error "
        "imports nothing (or, with --skip-invalid, skips the nodes with problems). Re-importing is "
        "idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--publish", action="store_true", help="Publish what was imported.")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid nodes; list the others with their problems.",
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
        for skipped in result.skipped:
            where = f"{skipped.file}: {skipped.pointer}" if skipped.pointer else skipped.file
            what = skipped.file if skipped.label == "the file" else f"{skipped.label} ({where})"
            self.stderr.write(self.style.WARNING(f"Skipped {what}:"))
            for problem in skipped.problems:
                self.stderr.write(f"  {problem}")
        summary = f"Imported {result.total} entities into {brand.slug!r}: " + outcomes(
            result, prefix="", publish=publish
        )
        # Facts (Claim nodes, as export_jsonld writes them) and FAQs (FAQPage markup), by key;
        # named as in ImportResult, the API's import response and an import job's counts.
        for noun, prefix in (("facts", "facts_"), ("FAQs", "faqs_")):
            count = sum(len(getattr(result, prefix + outcome)) for outcome in OUTCOMES[:3])
            if count:
                summary += f"; {count} {noun}: " + outcomes(result, prefix=prefix, publish=publish)
        files = [s for s in result.skipped if s.label == "the file"]
        if nodes := len(result.skipped) - len(files):
            summary += f"; skipped {nodes} invalid node(s)"
        if files:
            summary += f"; skipped {len(files)} invalid file(s)"
        self.stdout.write(self.style.SUCCESS(summary + "."))


def outcomes(result: ImportResult, *, prefix: str, publish: bool) -> str:
    """One kind of thing's outcomes: '2 created, 0 updated, 1 unchanged' (', 3 published')."""
    shown = OUTCOMES if publish else OUTCOMES[:3]
    return ", ".join(f"{len(getattr(result, prefix + outcome))} {outcome}" for outcome in shown)
