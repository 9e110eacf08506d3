"""Create or update a brand's directory target from the command line (operators, no shell).

The target deploys to ``SOURCEBOOK_SITE_ROOT/<brand slug>/<folder>``; the command prints the
live tree nginx serves (``…/current``). Running it again changes nothing.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from kb.management.commands._brand import get_brand
from publishing.models import Target
from publishing.targets.config import target_config_clean
from publishing.targets.directory import CURRENT, directory_root
from publishing.targets.errors import TargetConfigError


class Command(BaseCommand):
    help = (
        "Create (or update) the brand's directory target at SOURCEBOOK_SITE_ROOT/<slug>/<folder> "
        "and print the directory nginx must serve. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--folder",
            default="",
            help="One folder name under the brand's folder (default: the brand's folder itself).",
        )
        parser.add_argument(
            "--name", default="", help='The target\'s name (default: "site", or "site FOLDER").'
        )

    def handle(self, slug, folder, name, **options):
        brand = get_brand(slug)
        try:
            config = target_config_clean(
                brand=brand, kind=Target.Kind.DIRECTORY, config={"folder": folder}
            )
        except TargetConfigError as error:
            raise CommandError(str(error)) from None
        name = name.strip() or (f"site {folder}" if folder else "site")
        if len(name) > 100:
            raise CommandError(f"The target name is too long (at most 100 characters): {name!r}")
        with transaction.atomic():
            target = Target.objects.select_for_update().filter(brand=brand, name=name).first()
            if target is not None and target.kind != Target.Kind.DIRECTORY:
                raise CommandError(
                    f"Brand {slug!r} already has a {target.kind} target named {name!r}; "
                    "give another --name."
                )
            if target is None:
                target = Target(brand=brand, name=name, kind=Target.Kind.DIRECTORY)
                verb = "Created"
            elif (target.config or {}) == config and target.enabled and not target.operator_path:
                verb = "Kept"
            else:
                verb = "Updated"
            target.config = config
            target.enabled = True
            target.operator_path = ""  # the site root, not a `publish --out` directory
            try:
                root = directory_root(target)
            except TargetConfigError as error:
                raise CommandError(str(error)) from None
            target.save()
        self.stdout.write(f"{verb} directory target {name!r} of brand {slug!r}: {root}")
        self.stdout.write(
            f"Serve {root / CURRENT} (nginx root; in docker-compose: SOURCEBOOK_NGINX_ROOT)"
        )
