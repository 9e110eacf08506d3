import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.management.commands._brand import get_brand
from publishing.models import PublishRequest, Release, Target
from publishing.services import (
    BuildBusy,
    brand_build,
    publish_request_create,
    publish_request_dispatch,
)


class Command(BaseCommand):
    help = (
        "Build a release of the brand's published content and deploy it (to DIR when --out is "
        "given, else to the brand's enabled targets). Without a broker it runs in-process; "
        "with one, the request goes to the workers (--wait follows it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--out", metavar="DIR", help="Deploy to this directory (served from DIR/current)."
        )
        parser.add_argument("--wait", action="store_true", help="Wait for the worker to finish.")
        parser.add_argument("--reason", default="", help="Why (kept with the release).")

    def handle(self, slug, out, wait, reason, **options):
        brand = get_brand(slug)
        target = None
        if out:
            path = str(Path(out).resolve())
            # The operator's directory: kept in operator_path, which brand users cannot edit.
            target, _ = Target.objects.get_or_create(
                brand=brand,
                kind=Target.Kind.DIRECTORY,
                name=f"directory {path}"[:100],
                defaults={"config": {}, "operator_path": path},
            )
            if target.operator_path != path:
                target.operator_path = path
                target.save(update_fields=["operator_path"])
        request = publish_request_create(
            brand=brand,
            reason=reason or "Published from the command line",
            source=PublishRequest.Source.CLI,
            target=target,
            dispatch=False,
        )
        started = time.monotonic()
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.build_here(brand)
        elif not publish_request_dispatch(request_id=request.pk):
            self.stdout.write(
                f"The broker is unreachable: publish request {request.pk} is recorded and pending; "
                "it is sent to the workers as soon as the broker is back."
            )
            return
        elif not wait:
            self.stdout.write(f"Publish request {request.pk} queued for the workers.")
            return
        else:
            self.follow(request)
        request.refresh_from_db()
        self.report(request, time.monotonic() - started, out)

    def build_here(self, brand) -> None:
        bar = tqdm(total=0, unit="artifact", desc="Building", file=sys.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            brand_build(brand=brand, progress=progress)
        except BuildBusy as busy:
            raise CommandError(str(busy)) from None
        finally:
            bar.close()

    def follow(self, request: PublishRequest) -> None:
        bar = tqdm(total=0, unit="artifact", desc="Building", file=sys.stderr, disable=None)
        try:
            while True:
                request.refresh_from_db()
                if request.release_id:
                    release = Release.objects.get(pk=request.release_id)
                    bar.total, bar.n = release.progress_total, release.progress_done
                    bar.refresh()
                if request.state in (PublishRequest.State.DONE, PublishRequest.State.FAILED):
                    return
                time.sleep(0.5)
        finally:
            bar.close()

    def report(self, request: PublishRequest, seconds: float, out) -> None:
        release = request.release
        if release is None:
            raise CommandError(
                f"Publish request {request.pk} is {request.state}: no release was made."
            )
        if release.state == Release.State.FAILED:
            raise CommandError(
                f"Release {release.number} of {release.brand.slug} failed: {release.error}"
            )
        summary = release.summary
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.get("counts", {}).items()))
        processes = summary.get("processes", 1)
        self.stdout.write(
            f"Release {release.number} of {release.brand.slug}: {summary['artifacts']} artifacts "
            f"({counts}), {summary['changed']} changed; rendered {summary['rendered']}, "
            f"reused {summary['reused']}; built in {summary['seconds']:.2f}s"
            + (f" by {processes} processes." if processes > 1 else ".")
        )
        for iri, missing in summary.get("left_out", {}).items():
            self.stderr.write(
                f"Left out {iri}: it has no {' or '.join(missing)}, so it and every reference "
                "to it are not published."
            )
        for deployment in release.deployments.select_related("target"):
            where = deployment.target.operator_path or deployment.target.name
            if deployment.state == deployment.State.DONE:
                self.stdout.write(
                    f"Deployed to {where}: {summary['artifacts']} files, {deployment.uploaded} "
                    f"new or changed, {deployment.deleted} removed."
                )
            else:
                self.stderr.write(f"Deploying to {where} failed: {deployment.error}")
        if request.state == PublishRequest.State.FAILED:
            raise CommandError(release.error or "Deploying failed.")
        if out:
            self.stdout.write(f"Serve {Path(out).resolve() / 'current'}")
