"""``manage.py create_demo``: the "Digits" demo project from scikit-learn's digits as 64×64 PNGs."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from annotator.demo import render_digits
from annotator.models import Project
from annotator.services.imports import items_import_folder
from annotator.services.projects import project_create
from annotator.services.training_run import cold_start_run

DEMO_NAME = "Digits"


class Command(BaseCommand):
    help = 'Create the demo project "Digits" (1,797 unlabeled images) unless it exists.'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="Import only the first N digits.")

    def handle(self, *args: Any, **options: Any) -> None:
        if Project.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write(f'Demo project "{DEMO_NAME}" exists.')
            return
        folder = Path(settings.DATA_DIR) / "demo" / "digits"
        render_digits(folder, limit=options["limit"])
        admin = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        project = project_create(
            name=DEMO_NAME,
            labels=[{"name": str(d), "hotkey": str(d)} for d in range(10)],
            user=admin,
            retrain_every=10,
            input_size=32,
        )
        summary = items_import_folder(project=project, root=folder, user=admin)
        # The cold start runs here, not only on a worker: the broker may not be up yet.
        ranked = cold_start_run(project_id=project.id)
        self.stdout.write(
            f'Created demo project "{DEMO_NAME}" with {summary.imported} images; '
            f"the cold start put {ranked} spread-out, typical ones first."
        )
