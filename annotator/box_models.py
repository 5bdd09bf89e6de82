"""The box tables: an annotation's boxes and an item's box sets (consensus, pre-boxes, suggestions).

Kept beside ``annotator.models`` (which re-exports them) so that module holds the rest of the schema.
"""

from __future__ import annotations

from django.db import models


class BoxOutcome(models.TextChoices):
    """How a box of a saved answer came to be (``kinds.boxes.OUTCOMES``)."""

    DRAWN = "drawn", "Drawn by the annotator"
    ACCEPTED = "accepted", "A pre-box accepted as it was"
    MOVED = "moved", "A pre-box moved or resized"
    RELABELED = "relabeled", "A pre-box given another class"
    REJECTED = "rejected", "A pre-box rejected (kept as history, not part of the answer)"
    IMPORTED = "imported", "Brought by an import"


class BoxRole(models.TextChoices):
    """Which of an item's box sets an ``ItemBox`` row belongs to."""

    CONSENSUS = "consensus", "The item's boxes (its annotations' consensus, or a review)"
    PREDICTED = "predicted", "The served model's pre-boxes"
    SUGGESTED = "suggested", "The review scan's suggested boxes"


class BoxIssueKind(models.TextChoices):
    """The likely error a suggested box shows (``ml.detection.label_errors``: cleanlab's swap,
    badloc and overlooked subtypes); blank on a suggested box that shows none."""

    WRONG_CLASS = "wrong_class", "A given box of the wrong class"
    BADLY_PLACED = "badly_placed", "A given box badly placed"
    UNBOXED = "unboxed", "An object left unboxed"


# A box is a class and x, y, w, h in pixels of the displayed image (after EXIF rotation): an
# annotation's in ``AnnotationBox`` (with how each came to be), an item's in ``ItemBox``. The classes
# present are also the item's answer as a set of classes (``ItemClass``), so class counts and filters
# work for boxes as for labels; "nothing here" is a labeled item without consensus boxes.


class AnnotationBox(models.Model):
    annotation = models.ForeignKey("annotator.Annotation", on_delete=models.CASCADE, related_name="boxes")
    label_class = models.ForeignKey("annotator.LabelClass", on_delete=models.RESTRICT, related_name="+")
    x = models.FloatField()
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()
    outcome = models.CharField(max_length=16, choices=BoxOutcome.choices, default=BoxOutcome.DRAWN)
    confidence = models.FloatField(null=True, blank=True, help_text="The pre-box's confidence, if it was one.")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["annotation"], name="annotationbox_annotation")]


class ItemBox(models.Model):
    item = models.ForeignKey("annotator.Item", on_delete=models.CASCADE, related_name="boxes")
    role = models.CharField(max_length=16, choices=BoxRole.choices, default=BoxRole.CONSENSUS)
    label_class = models.ForeignKey("annotator.LabelClass", on_delete=models.RESTRICT, related_name="+")
    x = models.FloatField()
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()
    confidence = models.FloatField(null=True, blank=True, help_text="Pre-boxes: the model's confidence.")
    version = models.ForeignKey(
        "annotator.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issue = models.CharField(
        max_length=16, choices=BoxIssueKind.choices, blank=True, help_text="Suggested boxes: the likely error it shows."
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            # "All boxes of class c" is one index range; an item's boxes (or their absence) another.
            models.Index(fields=["label_class", "role", "item"], name="itembox_class"),
            models.Index(fields=["item", "role"], name="itembox_item"),
        ]
