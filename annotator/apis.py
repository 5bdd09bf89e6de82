"""The REST API: thin views that validate input, call a service or selector, and serialize output."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from annotator import schemas, selectors, services
from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    LABEL_CLASS_NAME_MAX_LENGTH,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    Item,
    Membership,
    ModelFamily,
    ModelVersion,
    Project,
    QueryStrategy,
    Range,
    ReviewAction,
    ReviewReason,
    ReviewStatus,
    label_class_name_clean,
)
from annotator.parsers import JSONParser
from annotator.responses import export_response, item_image_response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus service and model validation errors as 400 with a ``detail`` message
    (409 for a conflict with what is stored or held by someone else)."""
    if isinstance(exc, services.ConflictError):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
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
        "prelabel_threshold": project.prelabel_threshold,
        "labels_per_item": project.labels_per_item,
        "lease_seconds": project.lease_seconds,
        "created": project.created,
        "counts": selectors.project_counts(project=project),
        "model_version": model_version_data(current) if current else None,
        "retrain": selectors.retrain_status(project=project),
        "under_covered": selectors.class_coverage(project=project),
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


def item_data(item: Item, request: Request, *, project: Project, show_prelabel: bool) -> dict[str, Any]:
    """An item as served to annotators; ``item`` carries the names set by ``services.item_with_names``.
    Its pre-label is ``unsure`` when less confident than the project's ``prelabel_threshold``. Without
    ``show_prelabel``, nothing of the model's guess: no pre-label and no score."""
    prelabel = None
    if show_prelabel and item.pred_label_id is not None and item.pred_version_id is not None:
        confidence = item.pred_confidence
        prelabel = {
            "label": item.pred_label_name,
            "confidence": confidence,
            "model_version": item.pred_version_number,
            "probs": item.pred_probs,
            "unsure": confidence is None or confidence < project.prelabel_threshold,
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
        "score": item.score if show_prelabel else None,
        "lease_until": item.lease_until,
    }


class CanCreateProjects(BasePermission):
    """Listing is for every logged-in user; creating a project needs the permission an admin grants."""

    message = selectors.PROJECT_CREATE_REFUSED

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS or selectors.user_can_create_projects(user=request.user)


def range_field(bounds: Range, **kwargs: Any) -> serializers.IntegerField:
    """An integer field with the bounds and the message of a setting's one range (``models.Range``)."""
    return serializers.IntegerField(
        min_value=bounds.low, max_value=bounds.high, error_messages=bounds.error_messages, **kwargs
    )


@extend_schema_field({"type": "string", "maxLength": LABEL_CLASS_NAME_MAX_LENGTH})
class ClassNameField(serializers.Field):
    """A class name as sent: text only, as everywhere else (no number or object becomes a name); the
    service checks it by the one rule (``models.label_class_name_clean``), which also says this."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            try:
                label_class_name_clean(data)
            except DjangoValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return data

    def to_representation(self, value: Any) -> str:
        return value


class ProjectListCreateApi(APIView):
    permission_classes = [IsAuthenticated, CanCreateProjects]

    @extend_schema_serializer(component_name="ProjectCreate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        labels = serializers.ListField(child=serializers.JSONField(), allow_empty=False, max_length=500)
        retrain_every = range_field(RETRAIN_EVERY, default=10)
        strategy = serializers.ChoiceField(choices=QueryStrategy.values, default=DEFAULT_STRATEGY)
        input_size = range_field(INPUT_SIZE, default=32)
        model_family = serializers.ChoiceField(choices=ModelFamily.values, default=ModelFamily.CNN)
        backbone_path = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
        allow_flips = serializers.BooleanField(default=False)
        multi_label = serializers.BooleanField(default=False)
        labels_per_item = range_field(LABELS_PER_ITEM, default=1)
        show_prelabels = serializers.BooleanField(default=True)
        lease_seconds = range_field(LEASE_SECONDS, required=False)
        prelabel_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)

    @extend_schema(responses={200: schemas.ProjectOut(many=True)})
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_for_user(user=request.user).order_by("id")
        return Response([project_data(p) for p in projects])

    @extend_schema(
        request=InputSerializer,
        responses={201: schemas.ProjectOut, 400: schemas.BAD_REQUEST, 403: schemas.FORBIDDEN},
        description="Needs the permission to create projects (“Can add project”), which an admin grants.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.project_create(user=request.user, **serializer.validated_data)
        return Response(project_data(project), status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema_serializer(component_name="ProjectSettings")
    class SettingsSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        show_prelabels = serializers.BooleanField(required=False)
        prelabel_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        labels_per_item = range_field(LABELS_PER_ITEM, required=False)
        lease_seconds = range_field(LEASE_SECONDS, required=False)
        retrain_every = range_field(RETRAIN_EVERY, required=False)
        strategy = serializers.ChoiceField(choices=QueryStrategy.values, required=False)

    @extend_schema(responses={200: schemas.ProjectOut, 404: schemas.NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(project_data(project))

    @extend_schema(request=SettingsSerializer, responses={200: schemas.ProjectOut, **schemas.ERRORS})
    def patch(self, request: Request, project_id: int) -> Response:
        """Managers change the project's name and labeling settings; fields left out stay as they are."""
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        serializer = self.SettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        unknown = sorted(set(request.data) - set(serializer.fields))
        if unknown:
            raise ValidationError({name: ["This setting cannot be changed (or does not exist)."] for name in unknown})
        project = services.project_settings_update(project=project, **serializer.validated_data)
        return Response(project_data(project))


def label_class_data(label_class: Any, n: int) -> dict[str, Any]:
    return {"name": label_class.name, "hotkey": label_class.hotkey, "index": label_class.index, "n_labeled": n}


class LabelClassListApi(APIView):
    """A project's classes in output order with how many items carry each; managers append classes."""

    @extend_schema_serializer(component_name="ClassAdd")
    class InputSerializer(serializers.Serializer):
        name = ClassNameField()
        hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True)

    @extend_schema(responses={200: schemas.ClassCountOut(many=True), 404: schemas.NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        counts = {row["name"]: row["n"] for row in selectors.labels_per_class(project=project)}
        classes = selectors.project_classes(project=project)
        return Response([label_class_data(c, counts.get(c.name, 0)) for c in classes])

    @extend_schema(request=InputSerializer, responses={201: schemas.ClassCountOut, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label_class = services.label_class_add(project=project, **serializer.validated_data)
        return Response(label_class_data(label_class, 0), status=status.HTTP_201_CREATED)


class ItemImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": schemas.ImportIn}, responses={201: schemas.ImportSummaryOut, **schemas.ERRORS}
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"files": ["Attach one or more images or .zip files as 'files'."]})
        summary = services.items_import_uploads(project=project, files=[(f.name, f) for f in files], user=request.user)
        return Response(summary.as_dict(), status=status.HTTP_201_CREATED)


class NextItemApi(APIView):
    @extend_schema(
        parameters=[schemas.EXCLUDE],
        responses={200: schemas.ItemOut, 204: OpenApiResponse(description="Nothing left to label."), **schemas.ERRORS},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        exclude = query_ids(request, "exclude")
        item = services.item_lease_next(project=project, user=request.user, exclude=exclude)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(item_data(item, request, project=project, show_prelabel=project.show_prelabels))


class UndoApi(APIView):
    @extend_schema_serializer(component_name="UndoIn")
    class InputSerializer(serializers.Serializer):
        client_token = serializers.CharField(
            max_length=100,
            required=False,
            allow_blank=True,
            allow_null=True,
            help_text="The same token again gets the first answer and undoes nothing more (safe retries).",
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: schemas.ItemOut, 204: OpenApiResponse(description="Nothing to undo."), **schemas.ERRORS},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = serializer.validated_data.get("client_token")
        item = services.annotation_undo(project=project, user=request.user, client_token=token)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        shown = selectors.item_with_names(item.id)
        return Response(item_data(shown, request, project=project, show_prelabel=project.show_prelabels))


class AnnotationStatsApi(APIView):
    @extend_schema(responses={200: schemas.StatsOut, 404: schemas.NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response(selectors.annotation_stats(project=project))


#: The largest id: the database's ids are signed 64-bit integers, and a larger number in a query
#: fails in the database driver (``OverflowError``) instead of matching nothing.
ID_MAX = 2**63 - 1


def _query_id(part: str, name: str, expected: str) -> int:
    try:
        value = int(part)
    except ValueError:
        value = 0
    if not 1 <= value <= ID_MAX:
        raise ValidationError({name: [f"{expected}, from 1 to {ID_MAX}; got {part[:30]!r}."]})
    return value


def query_ids(request: Request, name: str, *, limit: int = 100) -> list[int]:
    """The query parameter ``name`` as a comma-separated list of item ids (the first ``limit``).
    Every integer a query parameter carries is read here or by ``query_id``: anything but whole
    numbers from 1 to ``ID_MAX`` is a 400 naming the parameter."""
    expected = "A comma-separated list of item ids (whole numbers)"
    parts = request.query_params.get(name, "").split(",")
    return [_query_id(part, name, expected) for part in parts if part.strip()][:limit]


def query_id(request: Request, name: str, *, what: str) -> int | None:
    """The query parameter ``name`` as one id (``None`` when absent or empty), checked as ``query_ids``."""
    value = request.query_params.get(name, "")
    return _query_id(value, name, f"A {what} (a whole number)") if value.strip() else None


class ItemDetailApi(APIView):
    @extend_schema(responses={200: schemas.ItemOut, 404: schemas.NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        shown = selectors.item_with_names(item.id)
        visible = selectors.prelabels_visible(user=request.user, project=item.project)
        return Response(item_data(shown, request, project=item.project, show_prelabel=visible))


class ItemImageApi(APIView):
    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, 404: schemas.NOT_FOUND})
    def get(self, request: Request, item_id: int) -> Any:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        return item_image_response(item)


class ItemSkipApi(APIView):
    @extend_schema(request=None, responses={200: schemas.SkipOut, **schemas.ERRORS, 409: schemas.CONFLICT})
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        services.item_skip(item=item, user=request.user)
        return Response({"id": item.id, "status": "skipped"})


class ItemReleaseApi(APIView):
    @extend_schema(request=None, responses={200: schemas.ReleaseOut, **schemas.ERRORS})
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        services.item_release(item=item, user=request.user)
        return Response({"id": item.id, "released": True})


class AnnotationCreateApi(APIView):
    @extend_schema_serializer(component_name="AnnotationCreate")
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=100, required=False)
        labels = serializers.ListField(child=serializers.CharField(max_length=100), max_length=500, required=False)
        client_token = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
        duration_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: schemas.AnnotationOut,
            200: schemas.AnnotationOut,
            **schemas.ERRORS,
            409: schemas.CONFLICT,
        },
    )
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
    @extend_schema(responses={200: schemas.ModelVersionOut(many=True), 404: schemas.NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response([model_version_data(v) for v in selectors.model_version_list(project=project)])


class TrainApi(APIView):
    @extend_schema(request=None, responses={202: schemas.DetailOut, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        services.training_request(project_id=project.id)
        return Response({"detail": "Retraining scheduled."}, status=status.HTTP_202_ACCEPTED)


class ExportApi(APIView):
    @extend_schema(
        parameters=[schemas.EXPORT_FORMAT, OpenApiParameter("include_ambiguous", bool)],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **schemas.ERRORS},
    )
    def get(self, request: Request, project_id: int) -> Any:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        fmt = request.query_params.get("format", "csv")
        try:
            return export_response(project, fmt, include_ambiguous=flag_param(request, "include_ambiguous"))
        except ValueError as exc:
            raise ValidationError({"format": [str(exc)]}) from exc


class ProjectDashboardApi(APIView):
    """The managers' dashboard figures (``selectors.project_dashboard``); the project page polls it."""

    @extend_schema(responses={200: schemas.DashboardOut, **schemas.ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        return Response(selectors.project_dashboard(project=project))


class ModelDownloadApi(APIView):
    """The current model version to take away: ``?format=zip`` (default), ``torchscript``, ``onnx`` or ``json``."""

    content_types = {"zip": "application/zip", "json": "application/json"}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["zip", "torchscript", "onnx", "json"], default="zip")],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **schemas.ERRORS},
    )
    def get(self, request: Request, project_id: int) -> Any:
        from django.http import FileResponse
        from django.utils.text import slugify
        from rest_framework.exceptions import NotFound

        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        fmt = request.query_params.get("format", "zip")
        if fmt not in services.MODEL_EXPORT_FILES:
            valid = ", ".join(services.MODEL_EXPORT_FILES)
            raise ValidationError({"format": [f"Unknown model format {fmt!r}; valid formats: {valid}."]})
        version = selectors.model_version_current(project=project)
        if version is None:
            raise NotFound("This project has no ready model version yet; one is published after its first retrain.")
        path = services.model_version_export(version=version, fmt=fmt)
        name = f"{slugify(project.name) or 'project'}-v{version.number}-{path.name}"
        content_type = self.content_types.get(fmt, "application/octet-stream")
        return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type=content_type)


def membership_data(membership: Membership) -> dict[str, Any]:
    return {"user_id": membership.user_id, "username": membership.user.get_username(), "role": membership.role}


class MemberListApi(APIView):
    """A project's members: everyone in the project reads the list; managers add people or change roles."""

    @extend_schema_serializer(component_name="MemberAdd")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Membership.Role.values, default=Membership.Role.ANNOTATOR)

    @extend_schema(responses={200: schemas.MemberOut(many=True), 404: schemas.NOT_FOUND})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        return Response([membership_data(m) for m in selectors.membership_list(project=project)])

    @extend_schema(request=InputSerializer, responses={201: schemas.MemberOut, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        from django.contrib.auth import get_user_model

        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=serializer.validated_data["username"]).first()
        if user is None:
            raise ValidationError({"username": ["No user with this username."]})
        membership = services.membership_add(project=project, user=user, role=serializer.validated_data["role"])
        return Response(membership_data(membership), status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(request=None, responses={204: None, **schemas.ERRORS})
    def delete(self, request: Request, project_id: int, user_id: int) -> Response:
        from rest_framework.exceptions import NotFound

        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        membership = selectors.membership_list(project=project).filter(user_id=user_id).first()
        if membership is None:
            raise NotFound("This user is not a member of the project.")
        services.membership_remove(project=project, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ItemListApi(APIView):
    """A project's items, paginated and filtered; members only. (``POST`` on the same path imports.)"""

    @extend_schema_serializer(component_name="ItemFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Item.Status.values, required=False)
        label = serializers.CharField(max_length=100, required=False)
        predicted = serializers.CharField(max_length=100, required=False)
        min_score = serializers.FloatField(required=False)
        max_score = serializers.FloatField(required=False)
        order = serializers.ChoiceField(choices=["id", "-score", "-priority"], default="id")

    @extend_schema(parameters=[FilterSerializer], responses={200: schemas.ItemPageOut, **schemas.ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        visible = selectors.prelabels_visible(user=request.user, project=project)
        if not visible:
            # Filtering or ordering on the model's guess would show it as well as the fields would.
            data = filters.validated_data
            refused = [name for name in ("predicted", "min_score", "max_score") if name in data]
            refused += ["order"] if data["order"] == "-score" else []
            if refused:
                reason = "This project hides the model's pre-labels (and scores) from annotators."
                raise ValidationError({name: [reason] for name in refused})
        items = selectors.item_list(project=project, **filters.validated_data)
        paginator = ItemPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(
            [item_data(i, request, project=project, show_prelabel=visible) for i in page]
        )


class AnnotationListApi(APIView):
    """A project's annotations, newest first, paginated: managers see everyone's, annotators their own."""

    @extend_schema(
        parameters=[OpenApiParameter("active", bool), OpenApiParameter("user", int)],
        responses={200: schemas.AnnotationPageOut, **schemas.ERRORS},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        is_manager = selectors.project_role(user=request.user, project=project) == Membership.Role.MANAGER
        user_id = query_id(request, "user", what="user id")
        if not is_manager:
            user_id = request.user.pk
        active = {"true": True, "false": False}.get(request.query_params.get("active", "").lower())
        annotations = selectors.annotation_list(project=project, user_id=user_id, active=active)
        paginator = ItemPagination()
        page = paginator.paginate_queryset(annotations, request, view=self)
        return paginator.get_paginated_response([annotation_data(a) for a in page])


def annotation_data(annotation: Any) -> dict[str, Any]:
    return {
        "id": annotation.id,
        "item": annotation.item_id,
        "label": annotation.label.name if annotation.label_id else None,
        "labels": annotation.labels,
        "user": annotation.user.get_username() if annotation.user_id else None,
        "source": annotation.source,
        "prelabel": annotation.prelabel,
        "duration_ms": annotation.duration_ms,
        "active": annotation.active,
        "created": annotation.created,
    }


class ItemsApi(ItemListApi, ItemImportApi):
    """``GET``: the project's items (paginated, filtered); ``POST``: import files into it."""

    parser_classes = [MultiPartParser, FormParser]


# Review of likely label errors --------------------------------------------------------------------


def flag_param(request: Request, name: str) -> bool:
    """A yes/no query parameter: ``1``, ``true`` or ``yes`` is yes."""
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def review_item_data(item: Item) -> dict[str, Any]:
    """An item as the review page shows it; ``item`` carries the names set by ``selectors.review_item``."""
    return {
        "id": item.id,
        "image_url": reverse("api-item-image", args=[item.id]),
        "filename": item.original_name,
        "label": item.label_name,
        "suggested": item.suggested_name,
        "labels": item.labels,
        "suggested_labels": item.review_suggested_labels,
        "confidence": item.review_confidence,
        "score": item.review_score,
        "reason": item.review_reason or None,
        "status": item.review_status,
        "action": item.review_action or None,
        "agreement": item.agreement,
        "n_annotations": item.n_annotations,
        "votes": selectors.item_votes(item=item),
    }


class ReviewItemOut(serializers.Serializer):
    id = serializers.IntegerField()
    image_url = serializers.CharField()
    filename = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    suggested = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True, help_text="Multi-label projects.")
    suggested_labels = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="Multi-label projects: the model's classes."
    )
    confidence = serializers.FloatField(allow_null=True)
    score = serializers.FloatField(allow_null=True, help_text="Label quality, 0..1; lower = more likely wrong.")
    reason = serializers.ChoiceField(choices=ReviewReason.values, allow_null=True)
    status = serializers.ChoiceField(choices=ReviewStatus.values)
    action = serializers.ChoiceField(choices=ReviewAction.values, allow_null=True)
    agreement = serializers.FloatField(allow_null=True)
    n_annotations = serializers.IntegerField()
    votes = serializers.ListField(child=serializers.DictField())


class ReviewCountsOut(serializers.Serializer):
    flagged = serializers.IntegerField()
    label_issue = serializers.IntegerField()
    disagreement = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    kept = serializers.IntegerField()
    changed = serializers.IntegerField()
    ambiguous = serializers.IntegerField()
    scanned_at = serializers.DateTimeField(allow_null=True)


class ReviewCountsApi(APIView):
    """The review's figures for the dashboard (``selectors.review_counts``)."""

    @extend_schema(responses={200: ReviewCountsOut, **schemas.ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        return Response(selectors.review_counts(project=project))


class ReviewScanApi(APIView):
    @extend_schema(request=None, responses={202: schemas.DetailOut, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        services.review_scan_request(project_id=project.id)
        return Response({"detail": "Scan for likely label errors scheduled."}, status=status.HTTP_202_ACCEPTED)


class ReviewNextApi(APIView):
    @extend_schema(
        parameters=[schemas.EXCLUDE],
        responses={200: ReviewItemOut, 204: OpenApiResponse(description="Nothing flagged."), **schemas.ERRORS},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        exclude = query_ids(request, "exclude")
        item = selectors.review_next(project=project, exclude=exclude)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(review_item_data(item))


class ItemReviewApi(APIView):
    class InputSerializer(serializers.Serializer):
        action = serializers.CharField(max_length=16)
        label = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
        labels = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, allow_null=True, max_length=500
        )

    @extend_schema(request=InputSerializer, responses={200: ReviewItemOut, **schemas.ERRORS})
    def post(self, request: Request, item_id: int) -> Response:
        item = selectors.item_get_for_user(user=request.user, item_id=item_id)
        require_manager(request.user, item.project)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reviewed = services.item_review(item=item, user=request.user, **serializer.validated_data)
        return Response(review_item_data(reviewed))


def job_params(params: dict[str, Any]) -> dict[str, Any]:
    """A job's parameters as the API shows them: no server paths of kept files, only whether there are any."""
    shown = {k: v for k, v in params.items() if k not in {"manifest", "uploads", "names"}}
    shown["manifest"] = "manifest" in params
    if "names" in params:
        shown["files"] = len(params["names"])
    return shown


def job_data(job: Any) -> dict[str, Any]:
    done_export = job.kind == "export" and job.status == "done" and bool(job.file)
    return {
        "id": job.id,
        "project": job.project_id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "params": job_params(job.params),
        "summary": job.summary,
        "error": job.error,
        "created": job.created,
        "finished": job.finished,
        "url": reverse("api-job", args=[job.id]),
        "download_url": reverse("api-job-download", args=[job.id]) if done_export else None,
    }


class JobImportApi(APIView):
    """Queue a background import of a server folder under ``IMPORT_ROOTS``, or of a manifest CSV."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        folder = serializers.CharField(max_length=4096, required=False)
        manifest = serializers.FileField(required=False)
        files = serializers.ListField(child=serializers.FileField(), required=False)

        class Meta:
            ref_name = "JobImportIn"

    @extend_schema(request=InputSerializer, responses={202: OpenApiTypes.OBJECT, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        files = request.FILES.getlist("files")
        if files:
            job = services.job_upload_import_request(
                project=project, user=request.user, files=[(f.name, f) for f in files]
            )
            return Response(job_data(job), status=status.HTTP_202_ACCEPTED)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not data.get("folder"):
            raise ValidationError({"folder": ["Give a server folder (and optionally a manifest), or attach files."]})
        job = services.job_import_request(
            project=project, user=request.user, folder=data["folder"], manifest=data.get("manifest")
        )
        return Response(job_data(job), status=status.HTTP_202_ACCEPTED)


class JobExportApi(APIView):
    """Queue a background export to a file; ``GET /api/jobs/{id}/`` follows it."""

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=services.JOB_EXPORT_FORMATS, default="csv")
        images = serializers.BooleanField(default=False)
        only_reviewed = serializers.BooleanField(default=False)
        include_ambiguous = serializers.BooleanField(default=False)

        class Meta:
            ref_name = "JobExportIn"

    @extend_schema(request=InputSerializer, responses={202: OpenApiTypes.OBJECT, **schemas.ERRORS})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = services.job_export_request(
            project=project,
            user=request.user,
            fmt=data["format"],
            images=data["images"],
            only_reviewed=data["only_reviewed"],
            include_ambiguous=data["include_ambiguous"],
        )
        return Response(job_data(job), status=status.HTTP_202_ACCEPTED)


class JobListApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT, **schemas.ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        return Response([job_data(job) for job in selectors.job_list(project=project)])


class JobDetailApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT, **schemas.ERRORS})
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get_for_user(user=request.user, job_id=job_id)
        require_manager(request.user, job.project)
        return Response(job_data(job))


class JobDownloadApi(APIView):
    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY, **schemas.ERRORS})
    def get(self, request: Request, job_id: int) -> Any:
        from django.http import FileResponse
        from rest_framework.exceptions import NotFound

        job = selectors.job_get_for_user(user=request.user, job_id=job_id)
        require_manager(request.user, job.project)
        path = services.job_file_path(job=job)
        if path is None:
            raise NotFound("This job has no file to download (not a finished export, or the file was removed).")
        name = path.name.split("-", 1)[-1] if path.name.startswith(f"job{job.id}-") else path.name
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)


class AgreementApi(APIView):
    """Agreement between annotators on overlapped items (``labels_per_item`` > 1); managers only."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **schemas.ERRORS})
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        require_manager(request.user, project)
        return Response(selectors.agreement_stats(project=project))
