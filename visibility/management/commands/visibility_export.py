import argparse
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kb.management.commands._brand import get_brand
from visibility.exports import (
    ANSWER_COLUMNS,
    answer_export_rows,
    rows_write_csv,
    rows_write_jsonl,
)


class Command(BaseCommand):
    help = (
        "Export the brand's answers with their evidence (prompt, engine, model, date, the raw "
        "answer, its citations and what the analysis found), oldest first, as CSV or JSON lines."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--since", type=_date, help="First day (YYYY-MM-DD), inclusive.")
        parser.add_argument("--until", type=_date, help="Last day (YYYY-MM-DD), inclusive.")
        parser.add_argument(
            "--out", type=Path, help="Write to this file (whole or not at all); default stdout."
        )

    def handle(self, slug, format, since, until, out, **options):
        brand = get_brand(slug)
        if since and until and since > until:
            raise CommandError(f"--since {since} is after --until {until}.")
        rows = answer_export_rows(brand=brand, since=since, until=until)
        if out is None:
            write(rows, self.stdout, format)
            return
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory.")
        partial = out.with_name(f".{out.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                count = write(rows, handle, format)
            partial.replace(out)  # the file appears whole, or not at all
        finally:
            partial.unlink(missing_ok=True)
        self.stderr.write(f"Exported {count} answer(s) of {brand} to {out}.")


def write(rows, handle, format: str) -> int:
    if format == "csv":
        return rows_write_csv(rows, handle, ANSWER_COLUMNS)
    return rows_write_jsonl(rows, handle)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None
