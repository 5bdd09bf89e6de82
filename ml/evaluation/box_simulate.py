"""The box projects' active-learning simulation, counted in annotator seconds.

The true boxes play the annotator. From the product's cold start (``ml.selection.cold_start`` on
the images' pooled stride-32 maps, the embeddings ``plan_batch`` spreads a batch over), every round
runs what the worker runs (``ml.detection.loop.detector_round``: the estimate on held-out labeled
images, its calibration, the served head, pre-boxes and scores, then ``plan_batch``), measures the
served head's mAP@0.5 on a test split it never saw (pycocotools), and "labels" the chosen batch.

Each labeled image is charged twice, with the same labels: as the labeling page shows it with the
pre-boxes above the display threshold, and as it would be without any. ``CostModel`` says what
each answer costs; both streams give a curve of mAP against seconds and the seconds to a target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ml.boxes import match_boxes
from ml.detection.centernet import FeatureMaps, detect
from ml.detection.evaluation import coco_map
from ml.detection.loop import MIN_STEPS, detector_round
from ml.selection import cold_start, cold_start_size, plan_batch


@dataclass(frozen=True)
class CostModel:
    """Seconds per act of the annotator. ``draw``: a box drawn from nothing (extreme clicking,
    Papadopoulos et al., ICCV 2017; 34.5 s the traditional way); ``verify``: a right pre-box
    accepted (Papadopoulos et al., CVPR 2016); ``adjust``: a pre-box of the right class moved or
    resized (IoU with the truth from ``adjust_iou`` to ``verify_iou``); ``delete``: a false pre-box
    removed; ``look``: every image, once. A pre-box of the wrong class, or overlapping less than
    ``adjust_iou``, is deleted and the object drawn."""

    draw: float = 7.0
    verify: float = 1.6
    adjust: float = 3.5
    delete: float = 1.0
    look: float = 1.0
    adjust_iou: float = 0.5
    verify_iou: float = 0.9


ACTS = ("drawn", "verified", "adjusted", "deleted")


def answer_cost(
    truth: np.ndarray, truth_labels: np.ndarray, shown: np.ndarray, shown_labels: np.ndarray, cost: CostModel
) -> tuple[float, dict[str, int]]:
    """Seconds to turn the ``shown`` pre-boxes (M, 4) of classes (M,) into the true boxes (K, 4) of
    classes (K,), and how many boxes were drawn, verified, adjusted and deleted. Pre-boxes pair
    with true boxes one to one (same class, IoU >= ``adjust_iou``, largest total overlap)."""
    pairs = match_boxes(shown, shown_labels, truth, truth_labels, threshold=cost.adjust_iou)
    verified = int((pairs.iou >= cost.verify_iou).sum())
    adjusted = len(pairs.iou) - verified
    acts = {
        "drawn": len(truth) - len(pairs.iou),
        "verified": verified,
        "adjusted": adjusted,
        "deleted": len(shown) - len(pairs.iou),
    }
    seconds = (
        cost.look
        + cost.draw * acts["drawn"]
        + cost.verify * verified
        + cost.adjust * adjusted
        + cost.delete * acts["deleted"]
    )
    return seconds, acts


@dataclass
class BoxData:
    """Pool and test split: the detector's maps (``FeatureMaps``) and the true boxes (K_i, 4) and
    classes (K_i,) of each image; ``embeddings`` (N_pool, 320) the pool's pooled stride-32 maps."""

    pool: FeatureMaps
    pool_boxes: list[np.ndarray]
    pool_labels: list[np.ndarray]
    test: FeatureMaps
    test_boxes: list[np.ndarray]
    test_labels: list[np.ndarray]
    n_classes: int
    embeddings: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.embeddings = self.pool.maps[2].float().mean(dim=(2, 3)).numpy() if len(self.pool) else np.zeros((0, 320))


@dataclass
class BoxSettings:
    """What ``simulate --task boxes`` runs: ``batch`` images per round (the project's retrain
    interval, which is also the first model's size), ``budget`` images labeled after those,
    ``aggregate`` per-box uncertainties to image scores, pre-boxes shown from ``prelabel_threshold``
    (the project default), ``target_map`` the mAP@0.5 whose seconds are counted."""

    strategies: list[str]
    batch: int = 10
    budget: int = 150
    repeats: int = 3
    seed: int = 0
    input_size: int = 256
    epochs: int = 30
    min_steps: int = MIN_STEPS
    aggregate: str = "max"
    prelabel_threshold: float = 0.5
    target_map: float = 0.7
    allow_flips: bool = True
    #: End a run at the round whose model reached ``target_map`` (its seconds are known by then).
    stop_at_target: bool = False
    #: Other display thresholds to charge the same runs at (what-ifs: the labels do not depend on it).
    other_thresholds: tuple[float, ...] = ()
    cost: CostModel = field(default_factory=CostModel)


@dataclass
class BoxPoint:
    """One round: images labeled, the test mAP@0.5 and mAP@[.5:.95] of the head trained on them,
    the product's held-out estimate (or None), and the seconds spent on them with and without
    pre-boxes."""

    labels: int
    map50: float
    map: float
    estimate: float | None
    seconds_with: float
    seconds_without: float
    seconds_at: dict[str, float] = field(default_factory=dict)


@dataclass
class BoxRun:
    """A run's points, what the annotator did to the pre-boxes, and the pool images in the order
    they were labeled."""

    curve: list[BoxPoint]
    acts: dict[str, int]
    order: list[int]


def _test_map(data: BoxData, head: object, sizes: Sequence[tuple[int, int]]) -> dict[str, float]:
    found = detect(head, data.test)  # type: ignore[arg-type]
    return coco_map(data.test_boxes, data.test_labels, found, n_classes=data.n_classes, sizes=sizes)


def initial_images(data: BoxData, settings: BoxSettings, repeat: int) -> np.ndarray:
    """The first batch: what the product's cold start puts first (shared by every strategy)."""
    k = min(max(settings.batch, cold_start_size(settings.batch)), len(data.pool))
    return cold_start(data.embeddings, k, seed=settings.seed * 1009 + repeat)[: settings.batch]


def run_one(
    data: BoxData, strategy: str, settings: BoxSettings, repeat: int, log: Callable[[str], None] | None = None
) -> BoxRun:
    """One run of ``strategy`` from the cold start to ``batch + budget`` labeled images."""
    sizes = [(b.width, b.height) for b in data.test.boxes_in]
    labeled = initial_images(data, settings, repeat)
    cost = settings.cost
    first = [answer_cost(data.pool_boxes[i], data.pool_labels[i], np.zeros((0, 4)), np.zeros(0), cost) for i in labeled]
    seconds_with = seconds_without = sum(s for s, _ in first)
    acts = {a: sum(n[a] for _, n in first) for a in ACTS}
    seconds_at = {str(t): seconds_with for t in settings.other_thresholds}
    target = min(len(labeled) + settings.budget, len(data.pool))
    curve: list[BoxPoint] = []
    rnd = 0
    while True:
        started = time.perf_counter()
        unlabeled = np.setdiff1d(np.arange(len(data.pool)), labeled)
        seed = settings.seed * 100003 + repeat * 1009 + rnd
        result = detector_round(
            data.pool.take(labeled),
            [data.pool_boxes[i] for i in labeled],
            [data.pool_labels[i] for i in labeled],
            data.pool.take(unlabeled),
            data.n_classes,
            input_size=settings.input_size,
            strategy=strategy,
            aggregate=settings.aggregate,
            allow_flips=settings.allow_flips,
            epochs=settings.epochs,
            min_steps=settings.min_steps,
            seed=seed,
        )
        figures = _test_map(data, result.head, sizes)
        estimate = result.metrics["val_map50"]
        point = BoxPoint(
            len(labeled),
            figures["map50"],
            figures["map"],
            None if estimate is None else float(estimate),
            seconds_with,
            seconds_without,
            dict(seconds_at),
        )
        curve.append(point)
        if log:
            log(
                f"{strategy:>16} r{repeat} images {point.labels:4d} mAP@0.5 {point.map50:.3f} est {estimate} "
                f"seconds {seconds_with:7.0f} with pre-boxes, {seconds_without:7.0f} without "
                f"({time.perf_counter() - started:.1f} s)"
            )
        reached = settings.stop_at_target and point.map50 >= settings.target_map
        if len(labeled) >= target or not len(unlabeled) or reached:
            return BoxRun(curve, acts, [int(i) for i in labeled])
        counts = np.array([sum(int((data.pool_labels[i] == c).any()) for i in labeled) for c in range(data.n_classes)])
        chosen = plan_batch(
            result.scores,
            min(settings.batch, target - len(labeled), len(unlabeled)),
            strategy=strategy,
            selection="diverse",
            probs=result.presence,
            counts=counts,
            embeddings=data.embeddings[unlabeled],
            seed=seed,
        )
        for c in chosen:
            i = unlabeled[c]
            found, sure = result.pool[c], result.confidence[c]
            shown = sure >= settings.prelabel_threshold
            with_pre, done = answer_cost(
                data.pool_boxes[i], data.pool_labels[i], found.boxes[shown], found.labels[shown], cost
            )
            without, _ = answer_cost(data.pool_boxes[i], data.pool_labels[i], np.zeros((0, 4)), np.zeros(0), cost)
            seconds_with += with_pre
            seconds_without += without
            for t in settings.other_thresholds:
                other = sure >= t
                seconds_at[str(t)] += answer_cost(
                    data.pool_boxes[i], data.pool_labels[i], found.boxes[other], found.labels[other], cost
                )[0]
            for a in ACTS:
                acts[a] += done[a]
        labeled = np.concatenate([labeled, unlabeled[chosen]])
        rnd += 1


def seconds_to(curve: Sequence[BoxPoint], target: float, *, with_preboxes: bool) -> float | None:
    """Seconds spent when the test mAP@0.5 first reached ``target``, or None when it never did."""
    for point in curve:
        if point.map50 >= target:
            return point.seconds_with if with_preboxes else point.seconds_without
    return None


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean, or None when a run did not reach the target (a mean over the others would flatter)."""
    found = [v for v in values if v is not None]
    return None if not values or len(found) < len(values) else round(float(np.mean(found)), 1)


def summarise(runs: Sequence[BoxRun], target: float) -> dict:
    """Mean curves over repeats ([labels, mAP@0.5 mean, std, mAP mean, seconds with pre-boxes, seconds
    without]), the labels and seconds to ``target`` (mean over repeats; None unless every repeat got
    there), and what the annotator did to the pre-boxes."""
    length = min(len(r.curve) for r in runs)  # runs stopped at the target may differ in length
    rows = np.array([[asdict(p) for p in r.curve[:length]] for r in runs], dtype=object)

    def column(name: str) -> np.ndarray:
        return np.array([[p[name] for p in run] for run in rows], dtype=np.float64)

    map50 = column("map50")
    curve = [
        [int(n), round(float(m), 4), round(float(s), 4), round(float(a), 4), round(float(w), 1), round(float(wo), 1)]
        for n, m, s, a, w, wo in zip(
            column("labels")[0],
            map50.mean(axis=0),
            map50.std(axis=0),
            column("map").mean(axis=0),
            column("seconds_with").mean(axis=0),
            column("seconds_without").mean(axis=0),
            strict=True,
        )
    ]
    labels_to = [next((p.labels for p in r.curve if p.map50 >= target), None) for r in runs]
    acts = {a: sum(r.acts[a] for r in runs) for a in ACTS}
    estimates = [(p.estimate, p.map50) for r in runs for p in r.curve if p.estimate is not None]
    return {
        "curve": curve,
        "labels_to_map": _mean_or_none([None if v is None else float(v) for v in labels_to]),
        "seconds_to_map": {
            "with_preboxes": _mean_or_none([seconds_to(r.curve, target, with_preboxes=True) for r in runs]),
            "without_preboxes": _mean_or_none([seconds_to(r.curve, target, with_preboxes=False) for r in runs]),
        },
        "per_repeat_seconds_to_map": [
            [seconds_to(r.curve, target, with_preboxes=True), seconds_to(r.curve, target, with_preboxes=False)]
            for r in runs
        ],
        "final_map50": curve[-1][1],
        "estimate_mae": round(float(np.mean([abs(e - m) for e, m in estimates])), 4) if estimates else None,
        "preboxes": acts,
    }


def ratios(strategies: dict[str, dict]) -> dict[str, float | str | None]:
    """The issue's comparisons: the best strategy other than random, with pre-boxes, against random
    order without and with pre-boxes (seconds to the target; None when one side never got there)."""
    with_pre = {k: v["seconds_to_map"]["with_preboxes"] for k, v in strategies.items()}
    reached = {k: v for k, v in with_pre.items() if v is not None and k != "random"}
    random = strategies.get("random", {}).get("seconds_to_map", {})
    if not reached or not random:
        return {"best": None, "best_with_vs_random_without": None, "best_with_vs_random_with": None}
    best = min(reached, key=lambda k: reached[k])
    out: dict[str, float | str | None] = {"best": best}
    pairs = (("best_with_vs_random_without", "without_preboxes"), ("best_with_vs_random_with", "with_preboxes"))
    for key, other in pairs:
        base = random.get(other)
        out[key] = round(reached[best] / base, 3) if base else None
    return out


def simulate_boxes(data: BoxData, settings: BoxSettings, log: Callable[[str], None] | None = None) -> dict:
    """Every strategy ``repeats`` times: the JSON report's ``strategies``, ``seconds_to_map`` (per
    strategy, with and without pre-boxes), ``ratios`` and the settings and cost model it rests on."""
    strategies: dict[str, dict] = {}
    raw: dict[str, list] = {}
    for strategy in settings.strategies:
        runs = [run_one(data, strategy, settings, r, log) for r in range(settings.repeats)]
        strategies[strategy] = summarise(runs, settings.target_map)
        raw[strategy] = [{"curve": [asdict(p) for p in r.curve], "order": r.order} for r in runs]
    return {
        "task": "boxes",
        "cost_model": asdict(settings.cost),
        "target_map50": settings.target_map,
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("cost", "strategies")},
        "strategies": strategies,
        "seconds_to_map": {k: v["seconds_to_map"] for k, v in strategies.items()},
        "ratios": ratios(strategies),
        "runs": raw,
    }
