import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kb.management.commands._brand import get_brand
from kb.selectors import STATES, brand_graph


class Command(BaseCommand):
    help = "Export a brand's graph as one JSON-LD document with @graph."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument("--state", choices=STATES, default="published")
        parser.add_argument(
            "--with-workflow",
            action="store_true",
            help="With --state latest: each object's workflow state (draft, in review, "
            "scheduled …), which import_jsonld restores.",
        )

    def handle(self, slug, output, state, with_workflow, **options):
        brand = get_brand(slug)
        if with_workflow and state != "latest":
            raise CommandError("--with-workflow goes with --state latest (the working copies).")
        document = brand_graph(brand=brand, state=state, workflow=with_workflow)
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if output:
            path = Path(output)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)  # never a half-written file
            self.stderr.write(f"Wrote {len(document['@graph'])} nodes ({state}) to {output}.")
        else:
            self.stdout.write(text, ending="")
