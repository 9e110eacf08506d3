import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kb.management.commands._brand import get_brand
from visibility.services import VisibilityError, visibility_run


class Command(BaseCommand):
    help = (
        "Ask the brand's prompt sets to its engines now (each question × engine × repetitions), "
        "analyse the answers and raise alerts. Runs in this process; an engine that fails is "
        "reported and the others go on."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--engine", action="append", metavar="NAME", help="Only this engine (repeatable)."
        )

    def handle(self, slug, engine, **options):
        brand = get_brand(slug)
        bar = None

        def on_plan(total: int) -> None:
            nonlocal bar
            bar = tqdm(total=total, desc="Asking", unit="answer", file=sys.stderr, disable=None)

        try:
            runs = visibility_run(
                brand=brand, engine_names=engine, on_plan=on_plan, progress=lambda n: bar.update(n)
            )
        except VisibilityError as error:
            raise CommandError(str(error)) from None
        finally:
            if bar is not None:
                bar.close()
        for run in runs:
            answers = run.answers.all()
            failed = answers.filter(ok=False)
            self.stdout.write(
                f"Run {run.pk} of {run.prompt_set}: {answers.count()} answers, "
                f"{failed.count()} failed, {run.alerts.count()} alert(s) — {run.get_state_display()}."
            )
            for answer in failed.select_related("engine", "prompt")[:20]:
                self.stderr.write(f"  {answer.engine}: “{answer.prompt}”: {answer.error}")
