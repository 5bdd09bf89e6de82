"""Review of likely label errors, for managers: the review's counts, scheduling a scan, the next
flagged item, and a decision on one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from annotator import selectors, services
from annotator.api import serializers as out
from annotator.api.inputs import EXCLUDE, query_ids
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import Item, ReviewAction, ReviewReason, ReviewStatus


class VoteOut(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    n = serializers.IntegerField()


class ReviewItemOut(serializers.Serializer):
    """An item as the review shows it: its label, the model's suggestion, why it was flagged, the votes."""

    # From an item carrying the names set by selectors.review_item (or review_next).

    id = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_name")
    label = serializers.CharField(source="label_name", allow_null=True)  # type: ignore[assignment]  # a declared field, not Field.label
    suggested = serializers.CharField(source="suggested_name", allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True, help_text="Multi-label projects.")
    suggested_labels = serializers.ListField(
        source="review_suggested_labels",
        child=serializers.CharField(),
        allow_null=True,
        help_text="Multi-label projects: the model's classes.",
    )
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

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, item: Item) -> str:
        return out.item_image_url(item.id)

    @extend_schema_field(serializers.ChoiceField(choices=ReviewReason.values, allow_null=True))
    def get_reason(self, item: Item) -> str | None:
        return item.review_reason or None

    @extend_schema_field(serializers.ChoiceField(choices=ReviewAction.values, allow_null=True))
    def get_action(self, item: Item) -> str | None:
        return item.review_action or None

    @extend_schema_field(VoteOut(many=True))
    def get_votes(self, item: Item) -> Any:
        return VoteOut(selectors.item_votes(item=item), many=True).data


class ReviewCountsOut(serializers.Serializer):
    flagged = serializers.IntegerField()
    label_issue = serializers.IntegerField()
    disagreement = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    kept = serializers.IntegerField()
    changed = serializers.IntegerField()
    ambiguous = serializers.IntegerField()
    scanned_at = serializers.DateTimeField(allow_null=True)


class ReviewCountsApi(ProjectApiView):
    """The review's figures for the dashboard (``selectors.review_counts``)."""

    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: ReviewCountsOut, **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(ReviewCountsOut(selectors.review_counts(project=self.project)).data)


class ReviewScanApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(request=None, responses={202: out.DetailOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        services.review_scan_request(project_id=self.project.id)
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
        item = selectors.review_next(project=self.project, exclude=exclude)
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

    @extend_schema(request=InputSerializer, responses={200: ReviewItemOut, **out.ERRORS})
    def post(self, request: SignedInRequest, item_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reviewed = services.item_review(item=self.item, user=request.user, **serializer.validated_data)
        return Response(ReviewItemOut(reviewed).data)
