"""Planted box errors with a known answer, and how many of them a box scan finds: for
``bench_label_errors --task boxes`` and its tests (``ml.detection.label_errors`` finds them).

Two kinds are planted, on disjoint boxes: a box relabeled to another class (uniformly), and a box
removed (its object left unboxed). Boxes are (K, 4) ``x, y, w, h`` and (K,) class positions per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.boxes import iou_matrix
from ml.detection.label_errors import BoxLabelIssues

#: A suggested box shows a removed object when it overlaps the object's true box this much.
FOUND_IOU = 0.5


@dataclass
class PlantedBoxNoise:
    """The noisy boxes and what was done: ``boxes``, ``labels`` (N,) the given boxes after the
    noise; ``swapped`` (S, 2) image and position (in the noisy boxes) of each relabeled box;
    ``removed_image`` (R,), ``removed_box`` (R, 4) and ``removed_label`` (R,) each removed box."""

    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    swapped: np.ndarray
    removed_image: np.ndarray
    removed_box: np.ndarray
    removed_label: np.ndarray


def plant_box_noise(
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_classes: int,
    *,
    swap: float,
    remove: float,
    seed: int = 0,
) -> PlantedBoxNoise:
    """Relabel round(swap B) and remove round(remove B) of all B boxes (disjoint, at random).

    Parameters
    ----------
    boxes : (N,) arrays (K_i, 4)
    labels : (N,) arrays (K_i,) int
    n_classes : int
        At least 2 when ``swap`` > 0.
    swap, remove : float
        Shares of the boxes, together at most 1.
    seed : int
    """
    if swap < 0 or remove < 0 or swap + remove > 1:
        raise ValueError("swap and remove are shares of the boxes, each at least 0, together at most 1")
    rng = np.random.default_rng(seed)
    owner = np.concatenate([np.full(len(y), i) for i, y in enumerate(labels)] + [np.zeros(0)]).astype(np.int64)
    position = np.concatenate([np.arange(len(y)) for y in labels] + [np.zeros(0)]).astype(np.int64)
    order = rng.permutation(len(owner))
    n_swap, n_remove = round(swap * len(owner)), round(remove * len(owner))
    to_swap, to_remove = order[:n_swap], order[n_swap : n_swap + n_remove]
    new_labels = [np.asarray(y, dtype=np.int64).copy() for y in labels]
    for k in to_swap:
        i, j = owner[k], position[k]
        new_labels[i][j] = (new_labels[i][j] + rng.integers(1, n_classes)) % n_classes
    keep = [np.ones(len(y), dtype=bool) for y in labels]
    for k in to_remove:
        keep[owner[k]][position[k]] = False
    shift = [np.cumsum(m) - 1 for m in keep]  # old position -> position among the kept boxes
    swapped = np.array([(owner[k], shift[owner[k]][position[k]]) for k in sorted(to_swap)], dtype=np.int64)
    removed = sorted(to_remove)
    return PlantedBoxNoise(
        boxes=[np.asarray(b, dtype=np.float64).reshape(-1, 4)[m] for b, m in zip(boxes, keep, strict=True)],
        labels=[y[m] for y, m in zip(new_labels, keep, strict=True)],
        swapped=swapped.reshape(-1, 2),
        removed_image=owner[removed],
        removed_box=np.array([np.asarray(boxes[owner[k]]).reshape(-1, 4)[position[k]] for k in removed]).reshape(-1, 4),
        removed_label=np.array([labels[owner[k]][position[k]] for k in removed], dtype=np.int64),
    )


def evaluate_box_issues(noise: PlantedBoxNoise, found: BoxLabelIssues) -> dict[str, float | int]:
    """How many planted errors a scan found, and how many of its flags are planted errors.

    An issue of a flagged image *points at* a planted error of the same image when either

    - its given box is a relabeled box (whatever the kind the scan gave it), or
    - its suggested box overlaps a removed box's true box at IoU >= ``FOUND_IOU``.

    ``recall``: planted errors pointed at by some issue / planted errors (``recall_swapped``,
    ``recall_removed`` per kind). ``precision``: issues that point at a planted error / issues
    (the boxes a reviewer is shown as wrong). ``image_precision``: flagged images that hold a
    planted error / flagged images. Unplanted issues all count against precision, though some may
    be the detector right about a scene's own box (a shape cut by the image's edge, say).
    """
    swapped = {(int(i), int(j)) for i, j in noise.swapped}
    found_swapped: set[tuple[int, int]] = set()
    found_removed: set[int] = set()
    right = n_issues = 0
    for i, issues in enumerate(found.issues):
        removed = np.flatnonzero(noise.removed_image == i)
        for issue in issues:
            n_issues += 1
            hits = False
            if issue.given is not None and (i, issue.given) in swapped:
                found_swapped.add((i, issue.given))
                hits = True
            if issue.suggested is not None and len(removed):
                box = found.suggested[i].boxes[issue.suggested : issue.suggested + 1]
                near = removed[iou_matrix(box, noise.removed_box[removed])[0] >= FOUND_IOU]
                found_removed.update(int(r) for r in near)
                hits = hits or bool(len(near))
            right += hits
    planted_images = {i for i, _ in swapped} | {int(i) for i in noise.removed_image}
    flagged_images = set(np.flatnonzero(found.flagged).tolist())
    n_swapped, n_removed = len(swapped), len(noise.removed_image)
    n_planted = n_swapped + n_removed
    return {
        "n_images": len(found.issues),
        "n_boxes_given": int(sum(len(y) for y in noise.labels)),
        "n_swapped": n_swapped,
        "n_removed": n_removed,
        "n_flagged_images": len(flagged_images),
        "n_issues": n_issues,
        "recall": (len(found_swapped) + len(found_removed)) / n_planted if n_planted else 1.0,
        "recall_swapped": len(found_swapped) / n_swapped if n_swapped else 1.0,
        "recall_removed": len(found_removed) / n_removed if n_removed else 1.0,
        "precision": right / n_issues if n_issues else 0.0,
        "image_precision": len(flagged_images & planted_images) / len(flagged_images) if flagged_images else 0.0,
    }
