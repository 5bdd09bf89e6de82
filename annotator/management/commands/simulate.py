"""``manage.py simulate``: the active-learning loop with the true labels as the oracle, per strategy."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.management.box_simulation import add_box_arguments, simulate_boxes_command
from ml.embeddings import load_backbone
from ml.evaluation.datasets import load_for_simulation
from ml.evaluation.simulate import INITIAL_SELECTIONS, THRESHOLDS, Data, Settings, simulate
from ml.scoring import SCORERS
from ml.selection import cold_start_family, default_selection, pixel_embeddings


def cached_embeddings(
    key: str, images: np.ndarray, family: str, backbone_path: str | None, log: Callable[[str], None]
) -> np.ndarray:
    """(N, D) backbone embeddings of (N, S, S, 3) images, computed once and kept in DATA_DIR/datasets."""
    digest = hashlib.sha256(np.ascontiguousarray(images[:: max(1, len(images) // 500)]).tobytes()).hexdigest()[:12]
    backbone = load_backbone(family, backbone_path)
    path = Path(settings.DATA_DIR) / "datasets" / f"emb_{key}_{backbone.key}_{len(images)}_{digest}.npy"
    if path.is_file():
        return np.load(path)
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(images), 2048):
        chunks.append(backbone.embed(images[start : start + 2048]))
        log(f"  embedded {start + len(chunks[-1])}/{len(images)} ({time.perf_counter() - started:.0f} s)")
    emb = np.concatenate(chunks) if chunks else np.empty((0, backbone.dim), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


class Command(BaseCommand):
    help = "Simulate active learning with the true labels as the oracle; learning curves per strategy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--task",
            choices=["classification", "boxes"],
            default="classification",
            help="boxes: the detector's loop in annotator seconds (see --dataset shapes and the cost flags)",
        )
        parser.add_argument(
            "--dataset",
            default=None,
            help="digits (default), mnist, or an ImageFolder directory; with --task boxes: shapes (default) "
            "or a folder with images and a COCO file",
        )
        parser.add_argument("--strategies", default="random,entropy,margin,bald")
        parser.add_argument("--model", choices=["cnn", "pretrained", "torchscript"], default="cnn")
        parser.add_argument("--backbone", default=None, help="TorchScript backbone file for --model torchscript")
        parser.add_argument("--initial", type=int, default=20, help="labels before the first model (counted)")
        parser.add_argument(
            "--initial-selection",
            choices=list(INITIAL_SELECTIONS),
            default="coldstart",
            help="which items get the initial labels: the product's cold start (default), class-balanced "
            "with the true labels (Gal et al.), or random",
        )
        parser.add_argument("--batch", type=int, default=10, help="labels acquired per round")
        parser.add_argument(
            "--budget", type=int, default=None, help="labels acquired after the initial ones (300; 150 for boxes)"
        )
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--selection", choices=["auto", "topk", "diverse"], default="auto")
        parser.add_argument(
            "--pool-subset",
            type=int,
            default=None,
            help="score a fresh random subset of this many unlabeled items each round (Gal et al.); default all",
        )
        parser.add_argument("--input-size", type=int, default=32, help="cached image side (the project default)")
        parser.add_argument("--test-fraction", type=float, default=0.2)
        parser.add_argument("--json", type=Path, default=None)
        parser.add_argument("--plot", type=Path, default=None)
        add_box_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        strategies = [s.strip() for s in options["strategies"].split(",") if s.strip()]
        unknown = [s for s in strategies if s not in SCORERS]
        if unknown or not strategies:
            raise CommandError(f"unknown strategies {unknown}; valid: {', '.join(sorted(SCORERS))}")
        if options["task"] == "boxes":
            simulate_boxes_command(options, strategies, self.stdout.write)
            return
        options["dataset"] = options["dataset"] or "digits"
        options["budget"] = 300 if options["budget"] is None else options["budget"]
        model = options["model"]
        try:
            (px, py), (tx, ty), classes = load_for_simulation(
                options["dataset"],
                options["input_size"],
                test_fraction=options["test_fraction"],
                seed=options["seed"],
                cache_dir=Path(settings.DATA_DIR) / "datasets",
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        log = self.stdout.write
        features = model != "cnn"
        key = Path(options["dataset"]).name or "data"
        coldstart_emb = None
        if features:
            px = cached_embeddings(f"{key}_pool", px, model, options["backbone"], log)
            tx = cached_embeddings(f"{key}_test", tx, model, options["backbone"], log)
        elif options["initial_selection"] == "coldstart":
            # The worker's cold start embeds a cnn project's pool with the packaged backbone too.
            try:
                coldstart_emb = cached_embeddings(f"{key}_pool", px, cold_start_family(model), None, log)
            except (FileNotFoundError, ValueError, RuntimeError):
                coldstart_emb = pixel_embeddings(px)
        data = Data(px, py, tx, ty, len(classes), features=features, coldstart_embeddings=coldstart_emb)
        selection = default_selection(model) if options["selection"] == "auto" else options["selection"]
        sim = Settings(
            strategies=strategies,
            initial=options["initial"],
            initial_selection=options["initial_selection"],
            batch=options["batch"],
            budget=options["budget"],
            repeats=options["repeats"],
            seed=options["seed"],
            selection=selection,
            pool_subset=options["pool_subset"],
        )
        log(
            f"{options['dataset']}: pool {len(py)}, test {len(ty)}, {len(classes)} classes; model {model}, "
            f"selection {selection}, {sim.initial} initial ({sim.initial_selection}) + {sim.budget} acquired "
            f"in batches of {sim.batch}, "
            f"{sim.repeats} repeats"
        )
        started = time.perf_counter()
        result = simulate(data, sim, log=log)
        report = {
            "dataset": options["dataset"],
            "model": model,
            "n_pool": len(py),
            "n_test": len(ty),
            "strategies": result["strategies"],
        }
        log("")
        log(
            f"{'strategy':>16} "
            + " ".join(f"{'n@' + t:>7}" for t in THRESHOLDS)
            + f" {'auc':>7} {'final':>7} {'est.mae':>8}"
        )
        for name, summary in result["strategies"].items():
            reach = summary["labels_to_accuracy"]
            cells = " ".join(f"{reach[t] if reach[t] is not None else '-':>7}" for t in THRESHOLDS)
            mae = summary.get("estimate_mae")
            log(
                f"{name:>16} {cells} {summary['auc']:7.4f} {summary['curve'][-1][1]:7.4f} "
                f"{mae if mae is not None else '-':>8}"
            )
        for name, summary in result["strategies"].items():
            pre = summary["prelabels"]
            if pre["served"]:
                log(
                    f"{name:>16} pre-labels of the {pre['served']} items served: {pre['suggested_share']:.0%} "
                    f"confident enough to suggest, {pre['suggested_accuracy'] or 0:.0%} of those right "
                    f"({pre['accuracy']:.0%} of all)"
                )
        log(f"{time.perf_counter() - started:.0f} s")
        if options["json"]:
            options["json"].write_text(json.dumps(report, indent=2) + "\n")
        if options["plot"]:
            plot(report, options["plot"])


def plot(report: dict, path: Path) -> None:
    """Every strategy's mean learning curve with a ±1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, summary in report["strategies"].items():
        curve = np.array(summary["curve"], dtype=np.float64)
        ax.plot(curve[:, 0], curve[:, 1], label=name)
        ax.fill_between(curve[:, 0], curve[:, 1] - curve[:, 2], curve[:, 1] + curve[:, 2], alpha=0.2)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{report['dataset']} ({report['model']}): pool {report['n_pool']}, test {report['n_test']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
