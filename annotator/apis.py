"""The REST API: thin views that validate input, call a service or selector, and serialize output."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from annotator import selectors, services
from annotator.models import Item, Membership, ModelFamily, ModelVersion, Project, QueryStrategy
from annotator.responses import export_response, item_image_response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus service and model validation errors as 400 with a ``detail`` message."""
    if isinstance(exc, services.ServiceError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": "; ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def require_manager(user: Any, project: Project) -> None:
    if selectors.project_role(user=user, project=project) != Membership.Role.MANAGER:
        from rest_framework.exceptions import PermissionDenied

        raise PermissionDenied("Only the project's managers may do this.")


def project_data(project: Project) -> dict[str, Any]:
    classes = selectors.project_classes(project=project)
    current = selectors.model_version_current(project=project)
    return {
        "id": project.id,
        "name": project.name,
        "labels": [c.name for c in classes],
        "classes": [{"name": c.name, "hotkey": c.hotkey, "index": c.index} for c in classes],
        "retrain_every": project.retrain_every,
        "strategy": project.strategy,
        "input_size": project.input_size,
        "model_family": project.model_family,
        "allow_flips": project.allow_flips,
        "multi_label": project.multi_label,
        "show_prelabels": project.show_prelabels,
        "labels_per_item": project.labels_per_item,
        "lease_seconds": project.lease_seconds,
        "created": project.created,
        "counts": selectors.project_counts(project=project),
        "model_version": model_version_data(current) if current else None,
    }


def model_version_data(version: ModelVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "status": version.status,
        "strategy": version.strategy,
        "n_labels": version.n_labels,
        "metrics": version.metrics,
        "error": version.error,
        "created": version.created,
        "finished": version.finished,
    }


def item_data(item: Item, request: Request, *, show_prelabel: bool = True) -> dict[str, Any]:
    """An item as served to annotators; ``item`` carries the names set by ``services.item_with_names``."""
    prelabel = None
    if show_prelabel and item.pred_label_id is not None and item.pred_version_id is not None:
        prelabel = {
            "label": item.pred_label_name,
            "confidence": item.pred_confidence,
            "model_version": item.pred_version_number,
            "probs": item.pred_probs,
        }
    return {
        "id": item.id,
        "image_url": reverse("api-item-image", args=[item.id]),
        "filename": item.original_name,
        "width": item.width,
        "height": item.height,
        "status": item.status,
        "label": item.label_name,
        "labels": item.labels,
        "prelabel": prelabel,
        "score": item.score,
        "lease_until": item.lease_until,
    }


class ProjectListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        labels = serializers.ListField(child=serializers.JSONField(), allow_empty=False, max_length=500)
        retrain_every = serializers.IntegerField(min_value=1, max_value=100_000, default=10)
        strategy = serializers.ChoiceField(choices=QueryStrategy.values, default=QueryStrategy.ENTROPY)
        input_size = serializers.IntegerField(min_value=8, max_value=512, default=32)
        model_family = serializers.ChoiceField(choices=ModelFamily.values, default=ModelFamily.CNN)
        backbone_path = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        allow_flips = serializers.BooleanField(default=False)
        multi_label = serializers.BooleanField(default=False)
        labels_per_item = serializers.IntegerField(min_value=1, max_value=20, default=1)
        show_prelabels = serializers.BooleanField(default=True)
        lease_seconds = serializers.IntegerField(min_value=10, max_value=86_400, required=False)

    def get(self, request: Request) -> Response:
        projects = selectors.project_list_for_user(user=request.user).order_by("id")
        return Response([project_data(p) for p in projects])

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        for entry in serializer.validated_data["labels"]:
            if not isinstance(entry, (str, dict)):
                raise ValidationError({"labels": ["Each label is a name or an object with name and hotkey."]})
        project = services.project_create(user=request.user, **serializer.validated_data)
        return Response(project_data(project), status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(project_data(project))


class ItemImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"files": ["Attach one or more images or .zip files as 'files'."]})
        summary = services.items_import_uploads(project=project, files=[(f.name, f) for f in files], user=request.user)
        return Response(summary.as_dict(), status=status.HTTP_201_CREATED)


class NextItemApi(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        exclude = parse_id_list(request.query_params.get("exclude", ""))
        item = services.item_lease_next(project=project, user=request.user, exclude=exclude)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(item_data(item, request, show_prelabel=project.show_prelabels))


class UndoApi(APIView):
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        item = services.annotation_undo(project=project, user=request.user)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(item_data(selectors.item_with_names(item.id), request, show_prelabel=project.show_prelabels))


class AnnotationStatsApi(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(selectors.annotation_stats(project=project))


def parse_id_list(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()][:100]
    except ValueError as exc:
        raise ValidationError({"exclude": ["A comma-separated list of item ids."]}) from exc


class ItemDetailApi(APIView):
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        shown = selectors.item_with_names(item.id)
        return Response(item_data(shown, request, show_prelabel=item.project.show_prelabels))


class ItemImageApi(APIView):
    def get(self, request: Request, item_id: int) -> Any:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        return item_image_response(item)


class ItemSkipApi(APIView):
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        services.item_skip(item=item, user=request.user)
        return Response({"id": item.id, "status": "skipped"})


class ItemReleaseApi(APIView):
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        services.item_release(item=item, user=request.user)
        return Response({"id": item.id, "released": True})


class AnnotationCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=100, required=False)
        labels = serializers.ListField(child=serializers.CharField(max_length=100), max_length=500, required=False)
        client_token = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
        duration_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)

    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        annotation, created = services.annotation_create(item=item, user=request.user, **serializer.validated_data)
        return Response(
            {
                "id": annotation.id,
                "item": annotation.item_id,
                "label": annotation.label.name if annotation.label_id else None,
                "labels": annotation.labels,
                "prelabel": annotation.prelabel,
                "created": annotation.created,
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ModelVersionListApi(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response([model_version_data(v) for v in selectors.model_version_list(project=project)])


class TrainApi(APIView):
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        services.training_request(project_id=project.id)
        return Response({"detail": "Retraining scheduled."}, status=status.HTTP_202_ACCEPTED)


class ExportApi(APIView):
    def get(self, request: Request, project_id: int) -> Any:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        fmt = request.query_params.get("format", "csv")
        try:
            return export_response(project, fmt)
        except ValueError as exc:
            raise ValidationError({"format": [str(exc)]}) from exc


class ProjectDashboardApi(APIView):
    """The managers' dashboard figures (``selectors.project_dashboard``); the project page polls it."""

    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        return Response(selectors.project_dashboard(project=project))
