"""A box project's review scan (``review_scan_run`` hands box projects here): likely box errors of
the labeled images, from out-of-fold detections judged by cleanlab (``ml.detection.label_errors``),
stored with the annotators' disagreement flags.

The fold heads train on the backbone maps the detector's rounds keep (``ml.detection.feature_cache``,
at ``detector_input_size()``), on the images' consensus boxes, as a round does. A flagged image's
reason is ``label_issue``; its suggested boxes (role ``suggested``) carry the likely error each shows:
a given box of the wrong class or badly placed under it, or an object left unboxed.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings

from annotator.kinds.boxes import CheckedBox
from annotator.models import Project
from annotator.selectors.classes import class_order
from annotator.selectors.model_versions import model_version_current
from annotator.selectors.review import review_data
from annotator.services.detection_run import detector_input_size, detector_maps_ensure, labeled_boxes, rounded_box
from annotator.services.review import SuggestedBox, review_flags_publish
from ml.detection.feature_cache import features_read
from ml.detection.label_errors import BoxLabelIssues, BoxScanConfig, scan_box_issues

logger = logging.getLogger(__name__)

#: Below this many labeled images a box scan looks only for disagreements: fold heads trained on
#: fewer miss too many objects to tell a wrong box from a hard one.
BOX_SCAN_MIN_LABELS = 20


def box_scan_config(*, allow_flips: bool = True) -> BoxScanConfig:
    """The scan's settings as the product runs it (and ``bench_label_errors --task boxes`` measures):
    ``ml.detection.label_errors``' defaults, with the rounds' epochs (``DETECTOR_EPOCHS``)."""
    return BoxScanConfig(epochs=int(settings.DETECTOR_EPOCHS), allow_flips=allow_flips)


def suggested_boxes(found: BoxLabelIssues, i: int, class_ids: list[int]) -> list[SuggestedBox]:
    """Image ``i``'s suggested boxes as stored, those showing an issue first (worst first), each
    with the issue's kind, then the others (best first)."""
    detections = found.suggested[i]
    kinds: dict[int, str] = {}
    for issue in found.issues[i]:
        if issue.suggested is not None:
            kinds.setdefault(issue.suggested, issue.kind)
    order = [*kinds, *(m for m in range(len(detections.scores)) if m not in kinds)]
    return [
        SuggestedBox(
            CheckedBox(
                class_ids[int(detections.labels[m])],
                *rounded_box(detections.boxes[m]),
                confidence=round(float(detections.scores[m]), 4),
            ),
            kinds.get(m, ""),
        )
        for m in order
    ]


def _confidence(found: BoxLabelIssues, i: int) -> float | None:
    """The detector's score of the box that shows the image's worst issue; on an image without one,
    the mean score of its suggested boxes; ``None`` when it has none."""
    detections = found.suggested[i]
    for issue in found.issues[i]:
        if issue.suggested is not None:
            return float(detections.scores[issue.suggested])
    return float(np.mean(detections.scores)) if len(detections.scores) else None


def box_review_scan_run(*, project: Project) -> int:
    """Scan a box project's labeled images for likely box errors and store the flags (the
    disagreements only below ``BOX_SCAN_MIN_LABELS`` labeled images); returns how many are flagged."""
    data = review_data(project=project)
    if len(data.item_ids) < BOX_SCAN_MIN_LABELS:
        return review_flags_publish(project_id=project.id)
    order = class_order(project_id=project.id)
    size = detector_input_size()
    cache = detector_maps_ensure(project)  # the maps of images imported since the last round, too
    features = features_read(cache, data.rows, input_size=size)
    boxes, labels = labeled_boxes(data.item_ids, order.position_of_id)
    version = model_version_current(project=project)
    found = scan_box_issues(
        features,
        boxes,
        labels,
        len(order),
        input_size=size,
        config=box_scan_config(allow_flips=project.allow_flips),
        seed=version.number if version is not None else 0,
    )
    item_ids = data.item_ids.tolist()
    suggested = [suggested_boxes(found, i, order.ids) for i in range(len(item_ids))]
    n_flagged = review_flags_publish(
        project_id=project.id,
        item_ids=item_ids,
        answers=data.answers,
        quality=found.quality.tolist(),
        suggested=[tuple(sorted({s.box.class_id for s in boxes_i})) for boxes_i in suggested],
        confidence=[_confidence(found, i) for i in range(len(item_ids))],
        flagged=[item_ids[i] for i in found.ranked],
        suggested_boxes=suggested,
    )
    logger.info("project %s: box review scan of %s images flagged %s", project.id, len(item_ids), n_flagged)
    return n_flagged
