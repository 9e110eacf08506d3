import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.management.commands._brand import get_brand
from visibility.site_audit.crawler import CrawlLimits
from visibility.site_audit.documents import audit_html, audit_json
from visibility.site_audit.services import SiteAuditError, site_audit_create, site_audit_run


class Command(BaseCommand):
    help = (
        "Audit a website the way answer engines see it: crawl it politely (robots.txt, "
        "sitemaps first, bounded), read its structured data and AI-readiness signals, score "
        "it and rank the fixes. With --import, the products, organization, stores, people "
        "and FAQs found go into the brand as drafts. Runs in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The brand the audit belongs to.")
        parser.add_argument("url", help="Where to start, e.g. https://www.example.com/")
        parser.add_argument("--max-pages", type=int, default=50, metavar="N",
                            help="Read at most N pages (default 50).")  # fmt: skip
        parser.add_argument("--max-depth", type=int, default=3, metavar="N",
                            help="Follow links at most N clicks from the start (default 3).")  # fmt: skip
        parser.add_argument("--max-seconds", type=int, default=300, metavar="S",
                            help="Stop crawling after S seconds (default 300).")  # fmt: skip
        parser.add_argument("--import", dest="import_entities", action="store_true",
                            help="Import the entities found as drafts.")  # fmt: skip
        parser.add_argument("--json", metavar="FILE", help="Write the report as JSON.")
        parser.add_argument("--html", metavar="FILE", help="Write the report as an HTML page.")

    def handle(self, slug, url, max_pages, max_depth, max_seconds, import_entities, **options):
        brand = get_brand(slug)
        if max_depth < 0 or max_seconds < 1:
            raise CommandError("--max-depth must be 0 or more and --max-seconds 1 or more.")
        try:
            audit = site_audit_create(
                brand=brand, url=url, max_pages=max_pages, import_entities=import_entities,
                queue=False,
            )  # fmt: skip
        except SiteAuditError as error:
            raise CommandError(str(error)) from None
        bar = tqdm(total=max_pages, desc="Crawling", unit="page", file=sys.stderr, disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        limits = CrawlLimits(max_pages=max_pages, max_depth=max_depth, max_seconds=max_seconds)
        try:
            audit = site_audit_run(audit_id=audit.pk, progress=progress, limits=limits)
        except Exception as error:
            raise CommandError(f"The audit failed: {error}") from None
        finally:
            bar.close()
        self.summary(audit)
        for option, render in (("json", audit_json), ("html", audit_html)):
            if options[option]:
                path = Path(options[option])
                if option == "json":
                    import json

                    path.write_text(json.dumps(render(audit), indent=2, ensure_ascii=False) + "\n")
                else:
                    path.write_text(render(audit), encoding="utf-8")
                self.stdout.write(f"Wrote {path}")

    def summary(self, audit) -> None:
        report = audit.report
        out = self.stdout.write
        crawl = report["crawl"]
        out(f"Audit {audit.pk} of {report['origin']}: {crawl['pages']} page(s) read, "
            f"{crawl['skipped']} address(es) left alone"
            + (f" ({crawl['stopped_by']})" if crawl["stopped_by"] else "") + ".")  # fmt: skip
        out(f"Score {report['score']}/100 (grade {report['grade']})")
        out(f"  {report['formula']}")
        for part in report["parts"]:
            out(f"  {part['group']:<18} {part['key']:<15} {part['points']:>5.1f} / {part['weight']:<3}"
                f" ({100 * part['fraction']:.0f} % {part['label']})")  # fmt: skip
        if report["fixes"]:
            out("Fixes, by what they add:")
            for number, fix in enumerate(report["fixes"], 1):
                out(f"  {number}. +{fix['points']:.1f} {fix['title']} — {fix['unlocks']}")
                for where in fix["where"][:5]:
                    out(f"       {where}")
                if len(fix["where"]) > 5:
                    out(f"       … and {len(fix['where']) - 5} more")
        changes = report.get("changes")
        if changes:
            out(f"Since audit {changes['since']}: score {changes['score_before']} → "
                f"{changes['score_after']}; {len(changes['findings_new'])} new finding(s), "
                f"{len(changes['findings_resolved'])} resolved; pages +{len(changes['pages_added'])} "
                f"−{len(changes['pages_removed'])}, {len(changes['pages_changed'])} changed.")  # fmt: skip
        imported = report.get("import")
        if imported is not None:
            outcomes = [e.get("outcome") for e in imported["entities"]]
            out(f"Imported as drafts: {outcomes.count('created')} created, "
                f"{outcomes.count('updated')} updated, {outcomes.count('unchanged')} unchanged; "
                f"FAQs {len(imported['faqs']['created'])} created; "
                f"{len(imported['conflicts'])} conflict(s) to decide, "
                f"{len(imported['skipped'])} left out.")  # fmt: skip
            for conflict in imported["conflicts"][:10]:
                out(f"  conflict: {conflict['entity']} {conflict['property']}: "
                    f"“{conflict['kept']}” ({conflict['kept_from']}) kept, "
                    f"“{conflict['other']}” ({conflict['other_from']})")  # fmt: skip
