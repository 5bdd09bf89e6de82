"""``manage.py make_shapes OUT``: write the generated shapes (``ml.evaluation.shapes``) as an ImageFolder;
``manage.py make_shapes --boxes OUT``: scenes of several shapes with their boxes, as images and a COCO
file (``ml.evaluation.scenes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.evaluation.scenes import write_scenes
from ml.evaluation.shapes import CLASSES, write_shapes


class Command(BaseCommand):
    help = (
        "Write a generated ImageFolder of coloured shapes (6 classes), for `simulate --dataset OUT`; with "
        "--boxes, scenes of several shapes each as OUT/images/*.png and their boxes as OUT/annotations.json (COCO)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "out", type=Path, help="folder to write (one subfolder per class, or images/ and a COCO file)"
        )
        parser.add_argument("--boxes", action="store_true", help="scenes with several objects and their boxes")
        parser.add_argument("--per-class", type=int, default=300, help="images per class (without --boxes)")
        parser.add_argument("--images", type=int, default=500, help="scenes to write (with --boxes)")
        parser.add_argument("--max-objects", type=int, default=6, help="most objects in a scene (with --boxes)")
        parser.add_argument("--size", type=int, help="image side in pixels (default 64; 128 with --boxes)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} is not empty; choose a new folder")
        try:
            if options["boxes"]:
                counts = write_scenes(
                    out,
                    n_images=options["images"],
                    size=options["size"] or 128,
                    max_objects=options["max_objects"],
                    seed=options["seed"],
                )
            else:
                n = write_shapes(out, per_class=options["per_class"], size=options["size"] or 64, seed=options["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["boxes"]:
            self.stdout.write(
                f"Wrote {counts['images']} scenes ({counts['empty']} without objects) with {counts['boxes']} boxes of "
                f"{', '.join(CLASSES)} to {out}/images and {out}/annotations.json (COCO)"
            )
        else:
            self.stdout.write(f"Wrote {n} images of {', '.join(CLASSES)} to {out}")
