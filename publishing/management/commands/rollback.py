from django.core.management.base import BaseCommand, CommandError

from kb.management.commands._brand import get_brand
from publishing.models import Deployment
from publishing.services import BuildBusy, PublishError, release_rollback


class Command(BaseCommand):
    help = "Deploy an earlier release of the brand again to every enabled target."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("release_number", type=int)

    def handle(self, slug, release_number, **options):
        brand = get_brand(slug)
        try:
            release, deployments = release_rollback(brand=brand, number=release_number)
        except (PublishError, BuildBusy) as error:
            raise CommandError(str(error)) from None
        failed = [d for d in deployments if d.state == Deployment.State.FAILED]
        for deployment in deployments:
            where = deployment.target.operator_path or deployment.target.name
            status = (
                "done"
                if deployment.state == Deployment.State.DONE
                else f"FAILED: {deployment.error}"
            )
            self.stdout.write(f"Release {release.number} → {where}: {status}")
        if failed:
            raise CommandError(
                f"Rollback to release {release.number} failed on {len(failed)} target(s)."
            )
        self.stdout.write(f"Rolled back {brand.slug} to release {release.number}.")
