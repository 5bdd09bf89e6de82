"""Review of likely label errors, for managers: the review's counts, scheduling a scan, the next
flagged item, and a decision on one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.box_serializers import BoxOut
from annotator.api.inputs import EXCLUDE, query_ids
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.kinds import kind_of
from annotator.models import BoxIssueKind, Item, ReviewAction, ReviewReason, ReviewStatus
from annotator.selectors.boxes import item_boxes_json, item_people_boxes
from annotator.selectors.review import (
    item_votes,
    review_answer_names,
    review_counts,
    review_next,
    review_suggested_boxes,
)
from annotator.services.review import item_review, review_scan_request


class VoteOut(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    n = serializers.IntegerField()


class PersonBoxesOut(serializers.Serializer):
    user = serializers.CharField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.source
    boxes = BoxOut(many=True)


class SuggestedBoxOut(BoxOut):
    confidence = out.Number(allow_null=True, help_text="The out-of-fold detector's score of the box, 0..1.")
    issue = serializers.ChoiceField(
        choices=BoxIssueKind.values,
        allow_null=True,
        help_text="The likely error the box shows: a given box of the wrong class or badly placed under it, "
        "or an object left unboxed; null: a box the scan agrees with.",
    )


class ReviewItemOut(serializers.Serializer):
    """An item as the review shows it: its label, the model's suggestion, why it was flagged, the votes."""

    # From an item with its project (selectors.review_item or review_next). The answers are shown as the
    # project's kind shows them: ``label``/``suggested`` on single-label projects, the lists otherwise.

    id = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_name")
    width = serializers.IntegerField(help_text="Pixels of the displayed image (boxes are in these).")
    height = serializers.IntegerField()
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # a declared field, not Field.label
    suggested = serializers.SerializerMethodField()
    labels = serializers.SerializerMethodField(help_text="Multi-label projects.")
    suggested_labels = serializers.SerializerMethodField(help_text="Multi-label projects: the model's classes.")
    confidence = out.Number(source="review_confidence", allow_null=True)
    score = out.Number(
        source="review_score", allow_null=True, help_text="Label quality, 0..1; lower = more likely wrong."
    )
    reason = serializers.SerializerMethodField()
    status = serializers.ChoiceField(source="review_status", choices=ReviewStatus.values)
    action = serializers.SerializerMethodField()
    agreement = out.Number(allow_null=True)
    n_annotations = serializers.IntegerField()
    votes = serializers.SerializerMethodField()
    boxes = serializers.SerializerMethodField(help_text="Box projects: the item's boxes; else null.")
    annotations = serializers.SerializerMethodField(
        help_text="Box projects: each person's boxes, as they drew them (rejected pre-boxes left out); else null."
    )
    suggested_boxes = serializers.SerializerMethodField(
        help_text="Box projects: the boxes the last scan's out-of-fold detector found, each with the likely "
        "error it shows (worst first); [] before a scan; else null."
    )

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, item: Item) -> str:
        return out.item_image_url(item)

    def _answers(self, item: Item) -> dict[str, Any]:
        """``{"label", "labels", "suggested", "suggested_labels"}``, read once per item."""
        cached = getattr(self, "_answers_of", None)
        if cached is None or cached[0] != item.id:
            names = review_answer_names(item=item)
            kind = kind_of(item.project)
            suggested = kind.as_json(names["suggested"])
            answers = kind.as_json(names["given"]) | {
                "suggested": suggested["label"],
                "suggested_labels": suggested["labels"],
            }
            self._answers_of = cached = (item.id, answers)
        return cached[1]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_label(self, item: Item) -> str | None:
        return self._answers(item)["label"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_suggested(self, item: Item) -> str | None:
        return self._answers(item)["suggested"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_labels(self, item: Item) -> list[str] | None:
        return self._answers(item)["labels"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_suggested_labels(self, item: Item) -> list[str] | None:
        return self._answers(item)["suggested_labels"]

    @extend_schema_field(serializers.ChoiceField(choices=ReviewReason.values, allow_null=True))
    def get_reason(self, item: Item) -> str | None:
        return item.review_reason or None

    @extend_schema_field(serializers.ChoiceField(choices=ReviewAction.values, allow_null=True))
    def get_action(self, item: Item) -> str | None:
        return item.review_action or None

    @extend_schema_field(VoteOut(many=True))
    def get_votes(self, item: Item) -> Any:
        return VoteOut(item_votes(item=item), many=True).data

    @extend_schema_field(BoxOut(many=True, allow_null=True))
    def get_boxes(self, item: Item) -> list[dict[str, Any]] | None:
        if not kind_of(item.project).boxes:
            return None
        return item_boxes_json(item_ids=[item.id]).get(item.id, [])

    @extend_schema_field(PersonBoxesOut(many=True, allow_null=True))
    def get_annotations(self, item: Item) -> list[dict[str, Any]] | None:
        if not kind_of(item.project).boxes:
            return None
        return item_people_boxes(item=item)

    @extend_schema_field(SuggestedBoxOut(many=True, allow_null=True))
    def get_suggested_boxes(self, item: Item) -> list[dict[str, Any]] | None:
        if not kind_of(item.project).boxes:
            return None
        return review_suggested_boxes(item=item)


class ReviewCountsOut(serializers.Serializer):
    flagged = serializers.IntegerField()
    label_issue = serializers.IntegerField()
    disagreement = serializers.IntegerField()
    manual = serializers.IntegerField(help_text="Flagged because a manager sent them (the data browser).")
    reviewed = serializers.IntegerField()
    kept = serializers.IntegerField()
    changed = serializers.IntegerField()
    ambiguous = serializers.IntegerField()
    scanned_at = serializers.DateTimeField(allow_null=True)


class ReviewCountsApi(ProjectApiView):
    """The review's figures for the dashboard (``review_counts``)."""

    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: ReviewCountsOut, **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(ReviewCountsOut(review_counts(project=self.project)).data)


class ReviewScanApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(request=None, responses={202: out.DetailOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        review_scan_request(project_id=self.project.id)
        scheduled = out.DetailOut({"detail": "Scan for likely label errors scheduled."})
        return Response(scheduled.data, status=status.HTTP_202_ACCEPTED)


class ReviewNextApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(
        parameters=[EXCLUDE],
        responses={200: ReviewItemOut, 204: OpenApiResponse(description="Nothing flagged."), **out.ERRORS},
    )
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        exclude = query_ids(request, "exclude")
        item = review_next(project=self.project, exclude=exclude)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewItemOut(item).data)


class ItemReviewApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    class InputSerializer(serializers.Serializer):
        action = serializers.CharField(max_length=16)
        label = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)  # type: ignore[assignment]  # a declared field, not Field.label
        labels = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, allow_null=True, max_length=500
        )
        boxes = serializers.ListField(
            child=serializers.DictField(),
            required=False,
            max_length=1000,
            help_text="Box projects, action change: the image's boxes, {label, x, y, w, h} each ([] nothing here).",
        )

    @extend_schema(request=InputSerializer, responses={200: ReviewItemOut, **out.ERRORS})
    def post(self, request: SignedInRequest, item_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reviewed = item_review(item=self.item, user=request.user, **serializer.validated_data)
        return Response(ReviewItemOut(reviewed).data)
