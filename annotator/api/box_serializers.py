"""The API's box fields: boxes and the model's pre-boxes as responses show them, and the methods
of the ``boxes`` and ``preboxes`` fields that items and annotations declare on box projects (null on
the other kinds)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotator.api.fields import Number
from annotator.kinds import kind_of
from annotator.models import Annotation, BoxOutcome, BoxRole, Item
from annotator.selectors.boxes import annotation_boxes_json, item_boxes_json


class BoxOut(serializers.Serializer):
    """An object box in pixels of the displayed image (after EXIF rotation): top-left ``x, y``, size ``w, h``."""

    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    x = Number()
    y = Number()
    w = Number()
    h = Number()


class PreboxOut(BoxOut):
    confidence = Number(help_text="The model's calibrated confidence that this box is right, 0..1.")


class AnnotationBoxOut(BoxOut):
    outcome = serializers.ChoiceField(choices=BoxOutcome.values, help_text="How the box came to be.")
    confidence = Number(allow_null=True, help_text="The pre-box's confidence, if it was one.")


class ItemBoxFields:
    """The methods of an item's ``boxes`` and ``preboxes`` (context: the "project", "show_prelabel").
    context "boxes" / "preboxes": ``{item id: boxes}`` for the instances shown (read here, one query,
    when absent)."""

    context: dict[str, Any]

    @extend_schema_field(BoxOut(many=True, allow_null=True))
    def get_boxes(self, item: Item) -> list[dict[str, Any]] | None:
        # context "boxes": {item id: boxes} for the instances shown (read here, one query, when absent)
        if not kind_of(self.context["project"]).boxes or item.status != Item.Status.LABELED:
            return None
        found = self.context.get("boxes")
        if found is None:
            found = item_boxes_json(item_ids=[item.id])
        return found.get(item.id, [])

    @extend_schema_field(PreboxOut(many=True, allow_null=True))
    def get_preboxes(self, item: Item) -> list[dict[str, Any]] | None:
        # context "preboxes": as "boxes", for the model's pre-boxes
        project = self.context["project"]
        if not kind_of(project).boxes or not self.context["show_prelabel"]:
            return None
        found = self.context.get("preboxes")
        if found is None:
            threshold = project.prelabel_threshold
            found = item_boxes_json(item_ids=[item.id], role=BoxRole.PREDICTED, min_confidence=threshold)
        return found.get(item.id, [])


class AnnotationBoxFields:
    """The method of an annotation's ``boxes`` (context: the "project")."""

    context: dict[str, Any]

    @extend_schema_field(AnnotationBoxOut(many=True, allow_null=True))
    def get_boxes(self, annotation: Annotation) -> list[dict[str, Any]] | None:
        if not kind_of(self.context["project"]).boxes:
            return None
        return annotation_boxes_json(annotation_ids=[annotation.id]).get(annotation.id, [])
