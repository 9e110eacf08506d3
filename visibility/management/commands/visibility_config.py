import os
import sys
import tempfile
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from kb.management.commands._brand import get_brand
from kb.models import Brand
from visibility.config_document import ConfigError, changes_text, config_apply, config_export

HEADER = (
    "# Sourcebook AI visibility configuration: engines, prompt sets, alerts.\n"
    "# Apply with: manage.py visibility_config apply FILE.yaml [--dry-run]\n"
    "# API keys are never written here: give each engine's api_key_env, or keep the key\n"
    "# stored encrypted in Sourcebook.\n"
)


class Command(BaseCommand):
    help = (
        "Export a brand's AI visibility configuration (engines, prompt sets with their "
        "questions, competitors, schedules and judges, alerts) as YAML, or apply such a file: "
        "idempotent, all or nothing, with --dry-run showing what would change."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "apply"])
        parser.add_argument("file", help="The YAML file to write or read; - for stdout/stdin.")
        parser.add_argument(
            "--brand",
            help="The brand's slug (export: needed when there are several brands; apply: "
            "default the file's brand).",
        )
        parser.add_argument("--dry-run", action="store_true", help="apply: only show the plan.")

    def handle(self, action, file, brand, dry_run, **options):
        if action == "export":
            self.export(file, brand)
        else:
            self.apply(file, brand, dry_run)

    def export(self, file: str, slug: str | None):
        if slug is None:
            slugs = list(Brand.objects.values_list("slug", flat=True)[:2])
            if len(slugs) != 1:
                raise CommandError("Give --brand SLUG: there is more than one brand.")
            slug = slugs[0]
        document = config_export(brand=get_brand(slug))
        text = HEADER + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
        if file == "-":
            self.stdout.write(text, ending="")
            return
        path = Path(file)
        if not path.parent.is_dir():
            raise CommandError(f"{path.parent} is not a directory.")
        # Written whole or not at all: a temporary file beside it, then renamed.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
        self.stderr.write(
            f"Wrote {path}: {len(document['engines'])} engine(s), "
            f"{len(document['prompt_sets'])} prompt set(s)."
        )

    def apply(self, file: str, slug: str | None, dry_run: bool):
        try:
            text = self.stdin_text() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}.") from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(error, "problem", error)
            raise CommandError(f"{file}: not YAML{where}: {problem}") from None
        slug = slug or (document.get("brand") if isinstance(document, dict) else None)
        if not slug:
            raise CommandError(f"{file}: name the brand (brand: SLUG) or give --brand SLUG.")
        try:
            changes = config_apply(brand=get_brand(slug), document=document, dry_run=dry_run)
        except ConfigError as error:
            lines = [
                f"{file}: {problem.pointer or '/'}: {problem.message}" for problem in error.problems
            ]
            raise CommandError("\n".join(["Nothing was changed.", *lines])) from None
        self.stdout.write(changes_text(changes))
        changed = sum(change.action != "unchanged" for change in changes)
        verb = "Would change" if dry_run else "Changed"
        self.stderr.write(
            f"{verb} {changed} of {len(changes)}." if changed else "Nothing to change."
        )

    def stdin_text(self) -> str:
        return sys.stdin.read()
