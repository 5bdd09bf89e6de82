"""``manage.py simulate --task boxes``: the detector's active-learning loop in annotator seconds.

The flags, the data (generated scenes or a folder with a COCO file), the table it prints and the
JSON it writes; the loop itself is ``ml.evaluation.box_simulate``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from ml.detection.scoring import AGGREGATES
from ml.evaluation.box_datasets import box_data, coco_folder_dataset, shapes_dataset
from ml.evaluation.box_simulate import CostModel, simulate_boxes

#: Cost flags: (flag, CostModel field, help).
COST_FLAGS = (
    ("--draw-seconds", "draw", "drawing a box from nothing (extreme clicking, ICCV 2017)"),
    ("--verify-seconds", "verify", "accepting a right pre-box (CVPR 2016)"),
    ("--adjust-seconds", "adjust", "moving or resizing a pre-box of the right class"),
    ("--delete-seconds", "delete", "deleting a false pre-box"),
    ("--look-seconds", "look", "looking at an image, once per image"),
)


def add_box_arguments(parser: CommandParser) -> None:
    """The flags only ``--task boxes`` reads (the shared ones are the classification simulation's)."""
    defaults = CostModel()
    for flag, name, text in COST_FLAGS:
        parser.add_argument(flag, type=float, default=getattr(defaults, name), help=f"boxes: {text}")
    parser.add_argument("--images", type=int, default=1000, help="boxes: generated scenes (--dataset shapes)")
    parser.add_argument("--target-map", type=float, default=0.7, help="boxes: the mAP@0.5 the seconds are counted to")
    parser.add_argument(
        "--aggregates",
        default="max",
        help=f"boxes: how per-box uncertainties make an image's score ({', '.join(AGGREGATES)}); several "
        "run each uncertainty strategy once per aggregate, named strategy/aggregate",
    )
    parser.add_argument(
        "--other-thresholds",
        default="",
        help="boxes: display thresholds to charge the same runs at besides the project's 0.5, e.g. 0.2,0.3 "
        "(each point's seconds_at)",
    )
    parser.add_argument(
        "--stop-at-target", action="store_true", help="boxes: end each run once its model reached --target-map"
    )
    parser.add_argument(
        "--detector-input",
        type=int,
        default=None,
        help="boxes: the detector's input side (the DETECTOR_INPUT_SIZE setting by default)",
    )


def simulate_boxes_command(options: dict[str, Any], strategies: list[str], log: Callable[[str], None]) -> dict:
    """Run the box simulation as the flags say, print its table, write ``--json`` and ``--plot``."""
    from ml.evaluation.box_simulate import BoxSettings

    aggregates = [a.strip() for a in options["aggregates"].split(",") if a.strip()]
    if not aggregates or any(a not in AGGREGATES for a in aggregates):
        raise CommandError(f"--aggregates takes {', '.join(AGGREGATES)}; got {options['aggregates']!r}")
    try:
        thresholds = tuple(float(t) for t in options["other_thresholds"].split(",") if t.strip())
    except ValueError as exc:
        raise CommandError(f"--other-thresholds takes numbers separated by commas: {exc}") from exc
    if any(not 0 <= t <= 1 for t in thresholds):
        raise CommandError("--other-thresholds are between 0 and 1")
    size = options["detector_input"] or int(settings.DETECTOR_INPUT_SIZE)
    if size % 32 or size < 64:
        raise CommandError("--detector-input must be a multiple of 32, at least 64")
    name = options["dataset"] or "shapes"
    try:
        if name == "shapes":
            dataset = shapes_dataset(options["images"], seed=options["seed"])
        elif Path(name).is_dir():
            dataset = coco_folder_dataset(Path(name), max_side=2 * size)
        else:
            raise CommandError(f"--dataset is shapes or a folder with images and a COCO file; {name} is neither")
        data = box_data(
            dataset,
            test_fraction=options["test_fraction"],
            seed=options["seed"],
            input_size=size,
            cache_dir=Path(settings.DATA_DIR) / "datasets",
            log=log,
        )
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    cost = CostModel(**{field: options[flag[2:].replace("-", "_")] for flag, field, _ in COST_FLAGS})
    if any(v < 0 for v in (cost.draw, cost.verify, cost.adjust, cost.delete, cost.look)):
        raise CommandError("seconds may not be negative")
    budget = 150 if options["budget"] is None else options["budget"]
    log(
        f"{name}: pool {len(data.pool)}, test {len(data.test)} images, {data.n_classes} classes; detector input "
        f"{size}; {options['batch']} images per round to {options['batch'] + budget}, {options['repeats']} repeats; "
        f"target mAP@0.5 {options['target_map']}"
    )
    started = time.perf_counter()
    report: dict[str, Any] = {}
    for aggregate in aggregates:
        names = strategies if aggregate == aggregates[0] else [s for s in strategies if s not in ("random", "bald")]
        if not names:
            continue
        sim = BoxSettings(
            strategies=names,
            batch=options["batch"],
            budget=budget,
            repeats=options["repeats"],
            seed=options["seed"],
            input_size=size,
            epochs=int(settings.DETECTOR_EPOCHS),
            min_steps=int(settings.DETECTOR_MIN_STEPS),
            aggregate=aggregate,
            target_map=options["target_map"],
            stop_at_target=options["stop_at_target"],
            other_thresholds=thresholds,
            cost=cost,
        )
        result = simulate_boxes(data, sim, log=log)
        suffix = "" if len(aggregates) == 1 or aggregate == "max" else f"/{aggregate}"
        report = merge(report, result, suffix)
    report = {"dataset": name, "n_pool": len(data.pool), "n_test": len(data.test), **report}
    report["settings"]["aggregates"] = aggregates
    print_table(report, log)
    log(f"{time.perf_counter() - started:.0f} s")
    if options["json"]:
        options["json"].write_text(json.dumps(report, indent=2) + "\n")
    if options["plot"]:
        plot_boxes(report, options["plot"])
    return report


def merge(report: dict, result: dict, suffix: str) -> dict:
    """``result``'s strategies added to ``report`` under ``name + suffix``; the ratios recomputed."""
    from ml.evaluation.box_simulate import ratios

    if not report:
        report = {k: v for k, v in result.items() if k not in ("strategies", "seconds_to_map", "runs", "ratios")}
        report.update(strategies={}, seconds_to_map={}, runs={})
        report["settings"].pop("aggregate", None)
    for key in ("strategies", "seconds_to_map", "runs"):
        report[key].update({f"{k}{suffix}": v for k, v in result[key].items()})
    report["ratios"] = ratios(report["strategies"])
    return report


def print_table(report: dict, log: Callable[[str], None]) -> None:
    target = report["target_map50"]
    log("")
    heads = (f"images@{target}", f"s@{target} pre", "s w/o pre")
    log(f"{'strategy':>16} {heads[0]:>10} {heads[1]:>11} {heads[2]:>10} {'final':>6}")
    for name, summary in report["strategies"].items():
        seconds = summary["seconds_to_map"]

        def cell(v: float | None, width: int) -> str:
            return f"{v if v is not None else '-':>{width}}"

        log(
            f"{name:>16} {cell(summary['labels_to_map'], 10)} {cell(seconds['with_preboxes'], 11)} "
            f"{cell(seconds['without_preboxes'], 10)} {summary['final_map50']:6.3f}"
        )
    r = report["ratios"]
    log(
        f"best with pre-boxes: {r['best']}; its seconds against random without pre-boxes "
        f"{r['best_with_vs_random_without']}, against random with them {r['best_with_vs_random_with']}"
    )


def plot_boxes(report: dict, path: Path) -> None:
    """mAP@0.5 against images labeled, and against annotator seconds with and without pre-boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_images, by_seconds) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, summary in report["strategies"].items():
        curve = np.array(summary["curve"], dtype=np.float64)
        (line,) = by_images.plot(curve[:, 0], curve[:, 1], label=name)
        by_seconds.plot(curve[:, 4], curve[:, 1], color=line.get_color(), label=f"{name}, pre-boxes")
        by_seconds.plot(curve[:, 5], curve[:, 1], color=line.get_color(), linestyle="--", label=f"{name}, none")
    for ax, label in ((by_images, "images labeled"), (by_seconds, "annotator seconds")):
        ax.axhline(report["target_map50"], color="grey", linewidth=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("test mAP@0.5")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report['dataset']}: pool {report['n_pool']}, test {report['n_test']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
