import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from kb.demo_brand import DEMO_PASSWORD, DEMO_USERNAME, demo_load


class Command(BaseCommand):
    help = "Load (or refresh) the demo brand, publish it, and create the demo login."

    def add_arguments(self, parser):
        parser.add_argument(
            "--visibility-days",
            type=int,
            default=None,
            help="Days of AI-visibility history to create for the demo engines (default 14; "
            "0 for none). Created once: an existing history is kept.",
        )

    def handle(self, visibility_days, **options):
        bar = tqdm(desc="Loading the demo brand", unit="entity", file=sys.stderr, disable=None)
        try:
            summary = demo_load(progress=bar.update, on_plan=lambda n: setattr(bar, "total", n))
        finally:
            bar.close()
        brand, result = summary["brand"], summary["import"]
        from visibility.demo import DEMO_DAYS, visibility_demo_load

        with tqdm(desc="Asking the demo engines", unit="answer", file=sys.stderr,
                  disable=None) as bar:  # fmt: skip
            visibility = visibility_demo_load(
                brand=brand,
                days=DEMO_DAYS if visibility_days is None else visibility_days,
                progress=bar.update,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo brand {brand.slug!r} ({brand.name}): {result.total} entities "
                f"({len(result.created)} new, {len(result.updated)} updated), "
                f"{summary['facts']} facts, {summary['faqs']} FAQs, all published; "
                f"{visibility['engines']} demo engines, {visibility['prompt_sets']} prompt sets, "
                f"{visibility['days']} days of visibility history. "
                f"Login: {DEMO_USERNAME} / {DEMO_PASSWORD}"
            )
        )
