"""``manage.py bench_label_errors``: plant label noise, run the product's scan (``ml.review.scan_label_issues``,
as the worker runs it on a ``cnn`` project), report precision and recall.

``--task boxes``: generated scenes (``ml.evaluation.scenes``, the images of ``make_shapes --boxes``
with the same ``--seed`` and ``--size``), a share of the boxes relabeled to another class and a share
removed (``ml.evaluation.box_noise``), then the box projects' scan as the worker runs it
(``ml.detection.label_errors.scan_box_issues`` with ``detection_review.box_scan_config``, on the
backbone maps at ``DETECTOR_INPUT_SIZE``). A planted error is found when an issue of its image points
at it: an issue on the relabeled box itself, or an issue whose suggested box overlaps the removed
box at IoU >= 0.5 (``box_noise.evaluate_box_issues``); precision is over the issues (boxes shown as
wrong), ``image_precision`` over the flagged images."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.evaluation.datasets import load_digits_arrays, load_imagefolder, load_mnist_arrays
from ml.evaluation.noise import attribute_targets, flip_labels, flip_memberships
from ml.review import scan_label_issues


def load_dataset(name: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every item of ``digits``, ``mnist`` (its 60k training images) or an ImageFolder path, decoded as imports do."""
    try:
        if name == "digits":
            return load_digits_arrays(size)
        if name == "mnist":
            return load_mnist_arrays(size)
        path = Path(name)
        if not path.is_dir():
            raise CommandError(f"--dataset is digits, mnist or an ImageFolder directory; {name} is none of these")
        return load_imagefolder(path, size)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from exc


def evaluate(flipped: np.ndarray, ranked: np.ndarray, quality: np.ndarray) -> dict[str, float | int]:
    """Precision and recall of the flagged set, and precision among the k lowest-quality items."""
    truth = set(flipped.tolist())
    flagged = set(ranked.tolist())
    hits = len(truth & flagged)
    k = len(truth)
    top_k = set(np.argsort(quality, kind="stable")[:k].tolist()) if k else set()
    return {
        "n_flipped": k,
        "n_flagged": len(flagged),
        "precision": hits / len(flagged) if flagged else 0.0,
        "recall": hits / k if k else 1.0,
        "precision_at_k": len(truth & top_k) / k if k else 1.0,
    }


class Command(BaseCommand):
    help = "Flip a fraction of labels, run the likely-label-error detector, report precision and recall."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--task", choices=["classes", "boxes"], default="classes", help="Labels of items, or boxes in scenes."
        )
        parser.add_argument("--dataset", default="digits", help="digits, mnist, or an ImageFolder directory")
        parser.add_argument("--noise", type=float, default=0.05)
        parser.add_argument("--noise-kind", choices=["uniform", "pairs"], default="uniform")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--folds", type=int, default=None, help="Default 5; with --task boxes, the product's (4).")
        parser.add_argument("--input-size", type=int, default=32)
        parser.add_argument("--limit", type=int, default=None, help="Use only the first N items.")
        parser.add_argument(
            "--multi-label",
            type=int,
            default=0,
            metavar="A",
            help="Judge sets of A classes per item instead (attributes of the dataset's classes); the noise "
            "adds or leaves out one class of an item.",
        )
        boxes = parser.add_argument_group("--task boxes")
        boxes.add_argument("--images", type=int, default=600, help="Scenes, every one labeled.")
        boxes.add_argument("--size", type=int, default=128, help="Scene side in pixels.")
        boxes.add_argument("--swap", type=float, default=0.05, help="Share of the boxes relabeled to another class.")
        boxes.add_argument("--remove", type=float, default=0.05, help="Share of the boxes removed.")
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["task"] == "boxes":
            result = bench_boxes(options, self.stdout.write)
            if options["json"]:
                options["json"].write_text(json.dumps(result, indent=2) + "\n")
            return
        options["folds"] = options["folds"] or 5
        if not 0 <= options["noise"] < 1:
            raise CommandError("--noise is a fraction in [0, 1)")
        started = time.perf_counter()
        images, labels, classes = load_dataset(options["dataset"], options["input_size"])
        if options["limit"]:
            images, labels = images[: options["limit"]], labels[: options["limit"]]
        n_attributes = options["multi_label"]
        if n_attributes:
            targets = attribute_targets(labels, len(classes), n_attributes=n_attributes, seed=options["seed"])
            noisy, flipped = flip_memberships(targets, fraction=options["noise"], seed=options["seed"])
            kind, n_outputs = f"one of {n_attributes} classes added or left out", n_attributes
        else:
            noisy, flipped = flip_labels(
                labels, len(classes), fraction=options["noise"], kind=options["noise_kind"], seed=options["seed"]
            )
            kind, n_outputs = options["noise_kind"], len(classes)
        self.stdout.write(
            f"{options['dataset']}: {len(labels)} labeled items, {len(flipped)} labels flipped "
            f"({kind}); the product's scan with {options['folds']} folds…"
        )
        issues, _ = scan_label_issues(
            images, noisy, n_outputs, features=False, folds=options["folds"], seed=options["seed"]
        )
        figures = evaluate(flipped, issues.ranked, issues.quality)
        result = {
            "dataset": options["dataset"],
            "noise": options["noise"],
            "noise_kind": "multi_label" if n_attributes else options["noise_kind"],
            "n_labeled": len(labels),
            **figures,
            "seconds": round(time.perf_counter() - started, 1),
        }
        self.stdout.write(
            "flagged {n_flagged} of {n_labeled}; precision {precision:.3f}, recall {recall:.3f}, "
            "precision@k {precision_at_k:.3f} (k = {n_flipped}); {seconds} s".format(**result)
        )
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n")


def bench_boxes(options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """Plant box errors in generated scenes, scan them as the product does, and measure what is found
    (the module docstring says how)."""
    from django.conf import settings

    from annotator.services.detection_review import box_scan_config
    from ml.detection.centernet import extract_features
    from ml.detection.label_errors import scan_box_issues
    from ml.evaluation.box_noise import evaluate_box_issues, plant_box_noise
    from ml.evaluation.scenes import draw_scene
    from ml.evaluation.shapes import CLASSES
    from ml.mobilenet import load_mobilenet_v2

    if options["images"] < 8 or options["size"] < 32:
        raise CommandError("--images is at least 8 and --size at least 32")
    started = time.perf_counter()
    rng = np.random.default_rng(options["seed"])  # write_scenes' sequence: make_shapes --boxes's images
    scenes = [draw_scene(options["size"], rng) for _ in range(options["images"])]
    try:
        noise = plant_box_noise(
            [s.boxes for s in scenes],
            [s.labels for s in scenes],
            len(CLASSES),
            swap=options["swap"],
            remove=options["remove"],
            seed=options["seed"],
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    config = box_scan_config()
    if options["folds"]:
        config = replace(config, folds=options["folds"])
    input_size = int(settings.DETECTOR_INPUT_SIZE)
    log(
        f"scenes: {len(scenes)} of {options['size']} px, {sum(len(s.labels) for s in scenes)} boxes; "
        f"{len(noise.swapped)} relabeled, {len(noise.removed_image)} removed; the product's box scan "
        f"({config.folds} folds, {config.epochs} epochs, maps at {input_size} px)…"
    )
    features = extract_features(load_mobilenet_v2(), [s.pixels for s in scenes], input_size=input_size)
    found = scan_box_issues(
        features, noise.boxes, noise.labels, len(CLASSES), input_size=input_size, config=config, seed=options["seed"]
    )
    result: dict[str, Any] = {
        "task": "boxes",
        "seed": options["seed"],
        "size": options["size"],
        "input_size": input_size,
        "swap": options["swap"],
        "remove": options["remove"],
        "folds": config.folds,
        "epochs": config.epochs,
        "found_when": "an issue on the relabeled box itself; an issue whose suggested box overlaps the "
        "removed box at IoU >= 0.5",
        **evaluate_box_issues(noise, found),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(
        "flagged {n_flagged_images} of {n_images} images, {n_issues} boxes; recall {recall:.3f} (relabeled "
        "{recall_swapped:.3f}, removed {recall_removed:.3f}), precision {precision:.3f} (images "
        "{image_precision:.3f}); {seconds} s".format(**result)
    )
    return result
