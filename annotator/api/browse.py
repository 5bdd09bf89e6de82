"""The data browser's API beside the items list (``GET /api/projects/{id}/items/``): one item's
history, and actions on several items at once (relabel, send to review, mark ambiguous)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.inputs import ID_MAX
from annotator.api.permissions import IsProjectManager, IsProjectMember, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import Item, ReviewAction
from annotator.selectors.answers import item_answer_names
from annotator.selectors.browse import item_history, item_predictions
from annotator.selectors.items import item_with_names
from annotator.selectors.projects import prelabels_visible
from annotator.services.annotations import annotation_create
from annotator.services.errors import ServiceError
from annotator.services.review import item_review, items_send_to_review


class HistoryEntryOut(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.source
    labels = serializers.ListField(child=serializers.CharField())
    created = serializers.DateTimeField()
    active = serializers.BooleanField(help_text="False: replaced or undone, kept as history.")


class VersionGuessOut(serializers.Serializer):
    version = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    confidence = out.Number()


class ItemHistoryOut(serializers.Serializer):
    item = out.ItemOut()
    annotations = HistoryEntryOut(many=True)
    predictions = VersionGuessOut(
        many=True, help_text="Each ready version's guess, oldest first; empty where predictions are hidden."
    )
    review_action = serializers.CharField(allow_blank=True)
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)


class ItemHistoryApi(ProjectApiView):
    """One item with who labeled what and when (replaced labels too), the review's decision and,
    where the caller may see it, the model's latest prediction."""

    permission_classes = [IsProjectMember]

    @extend_schema(responses={200: ItemHistoryOut, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, item_id: int) -> Response:
        project = self.project
        item = item_with_names(self.item.id)
        visible = prelabels_visible(user=request.user, project=project)
        context = {"project": project, "show_prelabel": visible, "answers": item_answer_names(item_ids=[item.id])}
        reviewer = None
        if item.reviewed_by_id is not None:
            reviewer = User.objects.filter(id=item.reviewed_by_id).values_list("username", flat=True).first()
        shown = {
            "item": item,
            "annotations": item_history(item=item),
            "predictions": item_predictions(item=item) if visible else [],
            "review_action": item.review_action,
            "reviewed_by": reviewer,
            "reviewed_at": item.reviewed_at,
        }
        return Response(ItemHistoryOut(shown, context=context).data)


BULK_ACTIONS = ("relabel", "review", "ambiguous")


class BulkIn(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX), min_length=1, max_length=500
    )
    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    label = serializers.CharField(max_length=100, required=False, help_text="relabel: the class name.")  # type: ignore[assignment]  # a declared field, not Field.label
    labels = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=500,
        required=False,
        help_text="relabel, multi-label: the classes.",
    )


class BulkOut(serializers.Serializer):
    action = serializers.CharField()
    changed = serializers.IntegerField(help_text="How many items the action was applied to.")


class ItemsBulkApi(ProjectApiView):
    """Managers relabel several items at once (each as the manager's own annotation, so history,
    consensus and retraining count it as any label), send them to review (reason ``manual``, first
    in the review queue) or mark them ambiguous (labeled items only). All or nothing: one item that
    cannot take the action is a 400 and nothing changes."""

    permission_classes = [IsProjectManager]

    @extend_schema(request=BulkIn, responses={200: BulkOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        given = BulkIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        ids = list(dict.fromkeys(data["items"]))
        items = list(Item.objects.select_related("project").filter(project=self.project, id__in=ids))
        if len(items) != len(ids):
            missing = sorted(set(ids) - {item.id for item in items})[:10]
            raise ValidationError({"items": [f"Not items of this project: {missing}."]})
        action = data["action"]
        wanted = "labels" if self.project.multi_label else "label"
        if action == "relabel" and wanted not in data:
            raise ValidationError({wanted: [f"Relabeling needs '{wanted}' on this project."]})
        try:
            with transaction.atomic():
                if action == "review":
                    items_send_to_review(project=self.project, item_ids=ids)
                elif action == "relabel":
                    for item in items:
                        annotation_create(item=item, user=request.user, **{wanted: data[wanted]})
                else:
                    for item in items:
                        item_review(item=item, user=request.user, action=ReviewAction.AMBIGUOUS)
        except ServiceError as exc:
            raise ValidationError({"items": [str(exc)]}) from exc
        return Response(BulkOut({"action": action, "changed": len(items)}).data)
