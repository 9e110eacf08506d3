from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kb.management.commands._brand import get_brand
from visibility.metrics import SCORE_FORMULA, SCORE_LEGEND, metrics_by


def percent(rate: dict) -> str:
    low, high = rate["ci95"]
    return f"{rate['rate'] * 100:5.1f}% [{low * 100:.0f}–{high * 100:.0f}]"


class Command(BaseCommand):
    help = "Print the brand's AI visibility per engine (and per language) as a table."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--days", type=int, default=30, help="The period: the last N days (default 30)."
        )
        parser.add_argument("--by", choices=["engine", "language", "prompt"], default="engine")

    def handle(self, slug, days, by, **options):
        brand = get_brand(slug)
        if days < 1:
            raise CommandError("--days must be at least 1.")
        since = (timezone.now() - timedelta(days=days - 1)).date()
        rows = metrics_by(brand=brand, group=by, since=since)
        if not rows:
            self.stdout.write(f"No answers for {brand} in the last {days} days.")
            return
        rows["all"] = metrics_by(brand=brand, since=since)["all"]
        header = ["", "Score", "Answers", "Mentioned", "Cited", "First", "Share of voice",
                  "Misstated", "Failed", "Cost"]  # fmt: skip
        table = [header]
        for key, metrics in rows.items():
            m = metrics.as_dict()
            label = key if len(key) <= 40 else key[:39] + "…"
            table.append([
                label if key != "all" else "All", f"{m['score']:.1f}", str(m["answers"]),
                percent(m["mention"]), percent(m["citation"]), percent(m["first_mention"]),
                percent(m["share_of_voice"]), percent(m["misstatement"]), str(m["failed"]),
                f"${m['cost_usd']:.4f}",
            ])  # fmt: skip
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        self.stdout.write(f"AI visibility of {brand}, last {days} days, by {by}:")
        self.stdout.write("")
        for index, row in enumerate(table):
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            self.stdout.write("  ".join(cells))
            if index == 0 or index == len(table) - 2:
                self.stdout.write("  ".join("-" * w for w in widths))
        self.stdout.write(f"\n{SCORE_FORMULA}\n  ({SCORE_LEGEND}; [..] = 95% Wilson interval)")
