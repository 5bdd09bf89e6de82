"""A box project's review scan (``review_scan_run`` -> ``detection_review.box_review_scan_run``):
fold heads trained by the worker's path on the stored boxes of imported scenes with planted errors,
likely box errors flagged with the boxes that show them, served by the review API beside the
image's own boxes; the annotators' disagreements kept; below 20 labeled images, disagreements only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotator.kinds.boxes import CheckedBox
from annotator.models import BoxIssueKind, BoxRole, Item, ItemBox, Project, ReviewReason, ReviewStatus
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_folder
from annotator.services.members import membership_add
from annotator.services.review import SuggestedBox, review_flags_publish
from annotator.services.training_run import review_scan_run
from ml.evaluation.box_noise import plant_box_noise
from ml.evaluation.scenes import write_scenes
from ml.evaluation.shapes import CLASSES as SHAPES
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def noisy_scenes(root: Path, *, n_images: int, seed: int) -> dict[str, int]:
    """Generated 96-px scenes whose COCO file has a tenth of its boxes relabeled and a tenth removed;
    returns how many of each."""
    write_scenes(root, n_images=n_images, size=96, max_objects=4, seed=seed)
    coco = json.loads((root / "annotations.json").read_text())
    per_image: dict[int, list[dict]] = {image["id"]: [] for image in coco["images"]}
    for a in coco["annotations"]:
        per_image[a["image_id"]].append(a)
    ids = list(per_image)
    boxes = [[a["bbox"] for a in per_image[i]] for i in ids]
    labels = [[a["category_id"] - 1 for a in per_image[i]] for i in ids]
    noise = plant_box_noise(boxes, labels, len(SHAPES), swap=0.1, remove=0.1, seed=seed)
    rows = [(i, b, c) for k, i in enumerate(ids) for b, c in zip(noise.boxes[k], noise.labels[k], strict=True)]
    coco["annotations"] = [
        {"id": n + 1, "image_id": i, "category_id": int(c) + 1, "bbox": b.tolist(), "area": b[2] * b[3], "iscrowd": 0}
        for n, (i, b, c) in enumerate(rows)
    ]
    (root / "annotations.json").write_text(json.dumps(coco))
    return {"swapped": len(noise.swapped), "removed": len(noise.removed_image)}


def test_a_box_scan_flags_likely_box_errors_and_the_review_serves_the_suggested_boxes(user, tmp_path, settings):
    # Given 48 imported scenes with planted box errors, and one more image two people boxed differently
    settings.DETECTOR_INPUT_SIZE, settings.DETECTOR_EPOCHS = 96, 30  # a fast scan; figures are the bench's
    planted = noisy_scenes(tmp_path / "labeled", n_images=48, seed=11)
    assert planted["swapped"] > 0 and planted["removed"] > 0
    write_scenes(tmp_path / "argued", n_images=1, size=96, seed=12)
    (tmp_path / "argued" / "annotations.json").unlink()
    project = make_project(user, name="Scenes", labels=list(SHAPES), kind="boxes", labels_per_item=2)
    items_import_folder(project=project, root=tmp_path / "labeled", user=user)
    items_import_folder(project=project, root=tmp_path / "argued", user=user)
    argued = Item.objects.select_related("project").get(project=project, status="unlabeled")
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    annotation_create(item=argued, user=user, boxes=[{"label": SHAPES[0], "x": 10, "y": 10, "w": 30, "h": 30}])
    annotation_create(item=Item.objects.select_related("project").get(id=argued.id), user=bob, boxes=[])
    consensus = set(ItemBox.objects.filter(item__project=project, role=BoxRole.CONSENSUS).values_list("id", flat=True))

    # When the worker's review scan runs
    n_flagged = review_scan_run(project_id=project.id)

    # Then the flags are stored: the people's disagreement as such, likely box errors as label issues
    flagged = Item.objects.filter(project=project, review_status=ReviewStatus.FLAGGED)
    assert n_flagged == flagged.count()
    assert flagged.get(id=argued.id).review_reason == ReviewReason.DISAGREEMENT
    issues = flagged.filter(review_reason=ReviewReason.LABEL_ISSUE)
    assert issues.exists()
    # And each label issue has a quality, a confidence and the suggested boxes that show its errors
    suggested = ItemBox.objects.filter(item__project=project, role=BoxRole.SUGGESTED)
    for item in issues:
        assert 0 <= item.review_score <= 1 and 0.5 <= item.review_confidence <= 1
        kinds = set(suggested.filter(item=item).values_list("issue", flat=True))
        assert kinds - {""} and kinds - {""} <= set(BoxIssueKind.values), kinds
    assert all(0.5 <= c <= 1 for c in suggested.values_list("confidence", flat=True))
    # And the item's own boxes are left as they were
    assert set(ItemBox.objects.filter(item__project=project, role=BoxRole.CONSENSUS).values_list("id", flat=True)) == (
        consensus | set(ItemBox.objects.filter(item=argued, role=BoxRole.CONSENSUS).values_list("id", flat=True))
    )

    # When the manager opens the review at an image flagged for its boxes
    api = APIClient()
    api.force_authenticate(user)
    first = issues.order_by("review_score", "id").first()
    shown = api.get(f"/api/projects/{project.id}/review/next/?exclude={argued.id}").json()
    # Then it is served with the given boxes and the suggested ones, those showing an error first
    assert shown["id"] == first.id and shown["reason"] == "label_issue"
    assert len(shown["boxes"]) == ItemBox.objects.filter(item=first, role=BoxRole.CONSENSUS).count()
    kinds = [b["issue"] for b in shown["suggested_boxes"]]
    assert kinds[0] in BoxIssueKind.values and kinds == sorted(kinds, key=lambda k: k is None)
    assert set(shown["suggested_boxes"][0]) == {"label", "x", "y", "w", "h", "confidence", "issue"}


def test_a_box_scan_of_few_labeled_images_keeps_to_disagreements(user, tmp_path):
    # Given a box project of 6 labeled scenes (fewer than a fold scan needs)
    write_scenes(tmp_path / "few", n_images=6, size=64, seed=3)
    project = make_project(user, name="Few", labels=list(SHAPES), kind="boxes")
    items_import_folder(project=project, root=tmp_path / "few", user=user)
    # When the review scan runs
    assert review_scan_run(project_id=project.id) == 0
    # Then nothing is flagged or suggested, and the scan is recorded
    assert not ItemBox.objects.filter(item__project=project, role=BoxRole.SUGGESTED).exists()
    assert Project.objects.get(id=project.id).review_scanned_at is not None


def test_suggested_boxes_are_replaced_by_the_next_scan_and_keep_their_errors(user, tmp_path):
    # Given a labeled box project's item
    write_scenes(tmp_path / "one", n_images=2, size=64, seed=4)
    project = make_project(user, name="One", labels=list(SHAPES), kind="boxes")
    items_import_folder(project=project, root=tmp_path / "one", user=user)
    item = Item.objects.filter(project=project).order_by("id").first()
    classes = dict(project.classes.values_list("name", "id"))
    answer = tuple(
        sorted(set(ItemBox.objects.filter(item=item, role="consensus").values_list("label_class_id", flat=True)))
    )

    def scan(boxes: list[SuggestedBox]) -> int:
        return review_flags_publish(
            project_id=project.id,
            item_ids=[item.id],
            answers=[answer],
            quality=[0.2],
            suggested=[tuple(sorted({b.box.class_id for b in boxes}))],
            confidence=[0.8],
            flagged=[item.id],
            suggested_boxes=[boxes],
        )

    # When a scan suggests two boxes, one showing an object left unboxed
    star = CheckedBox(classes["star"], 5, 6, 20, 21, confidence=0.8)
    square = CheckedBox(classes["square"], 30, 30, 10, 10, confidence=0.7)
    assert scan([SuggestedBox(star, "unboxed"), SuggestedBox(square)]) == 1
    # Then both are stored with what they show
    rows = ItemBox.objects.filter(item=item, role=BoxRole.SUGGESTED).order_by("id")
    assert list(rows.values_list("label_class__name", "x", "confidence", "issue")) == [
        ("star", 5.0, 0.8, "unboxed"),
        ("square", 30.0, 0.7, ""),
    ]
    # When the next scan suggests one box only, it replaces them
    scan([SuggestedBox(square, "wrong_class")])
    assert list(rows.values_list("label_class__name", "issue")) == [("square", "wrong_class")]
