"""``manage.py bench_label_errors``: plant label noise, run the product's scan (``ml.review.scan_label_issues``,
as the worker runs it on a ``cnn`` project), report precision and recall."""

from __future__ import annotations

import json
import time
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
        parser.add_argument("--dataset", default="digits", help="digits, mnist, or an ImageFolder directory")
        parser.add_argument("--noise", type=float, default=0.05)
        parser.add_argument("--noise-kind", choices=["uniform", "pairs"], default="uniform")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--folds", type=int, default=5)
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
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
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
