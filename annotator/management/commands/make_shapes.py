"""``manage.py make_shapes OUT``: write the generated shapes (``ml.evaluation.shapes``) as an ImageFolder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.evaluation.shapes import CLASSES, write_shapes


class Command(BaseCommand):
    help = "Write a generated ImageFolder of coloured shapes (6 classes), for `simulate --dataset OUT`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path, help="folder to write (one subfolder per class)")
        parser.add_argument("--per-class", type=int, default=300)
        parser.add_argument("--size", type=int, default=64, help="image side in pixels")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} is not empty; choose a new folder")
        try:
            n = write_shapes(out, per_class=options["per_class"], size=options["size"], seed=options["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Wrote {n} images of {', '.join(CLASSES)} to {out}")
