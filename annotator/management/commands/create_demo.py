"""``manage.py create_demo``: the "Digits" demo project from scikit-learn's digits as 64×64 PNGs."""

from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from PIL import Image

from annotator import services
from annotator.models import Project
from annotator.training import cold_start_run

DEMO_NAME = "Digits"


def render_digits(folder: Path, *, limit: int | None = None) -> list[int]:
    """Write scikit-learn's 8×8 digits as 64×64 grayscale PNGs; returns the true labels in file order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, targets = digits.images, digits.target
    if limit is not None:
        images, targets = images[:limit], targets[:limit]
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        path = folder / f"digit_{i:04d}.png"
        if not path.exists():
            pixels = (255 - image * (255 / 16)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).resize((64, 64), Image.Resampling.BILINEAR).save(path)
    return [int(t) for t in targets]


class Command(BaseCommand):
    help = 'Create the demo project "Digits" (1,797 unlabeled images) unless it exists.'

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="Import only the first N digits.")

    def handle(self, *args, **options) -> None:
        if Project.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write(f'Demo project "{DEMO_NAME}" exists.')
            return
        folder = Path(settings.DATA_DIR) / "demo" / "digits"
        render_digits(folder, limit=options["limit"])
        admin = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        project = services.project_create(
            name=DEMO_NAME,
            labels=[{"name": str(d), "hotkey": str(d)} for d in range(10)],
            user=admin,
            retrain_every=10,
            input_size=32,
        )
        summary = services.items_import_folder(project=project, root=folder, user=admin)
        # The cold start runs here, not only on a worker: the broker may not be up yet.
        ranked = cold_start_run(project_id=project.id)
        self.stdout.write(
            f'Created demo project "{DEMO_NAME}" with {summary.imported} images; '
            f"the cold start put {ranked} spread-out, typical ones first."
        )
