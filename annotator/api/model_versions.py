"""Model versions: the list, asking for a retrain, and taking the current model away as a file."""

from __future__ import annotations

from django.http import FileResponse
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.permissions import IsProjectManager, IsProjectMember, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.selectors.model_versions import (
    model_version_current,
    model_version_get,
    model_version_list,
)
from annotator.services.model_files import MODEL_EXPORT_FILES, model_version_export
from annotator.services.training import training_request


class ModelVersionListApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(responses={200: out.ModelVersionOut(many=True), 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.ModelVersionOut(model_version_list(project=self.project), many=True).data)


class ModelVersionDetailApi(ProjectApiView):
    """One version with where it goes wrong: its confusion and each class's precision and recall."""

    permission_classes = [IsProjectMember]

    @extend_schema(responses={200: out.ModelVersionDetailOut, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int, number: int) -> Response:
        version = model_version_get(project=self.project, number=number)
        if version is None:
            raise NotFound(f"This project has no model version {number}.")
        return Response(out.ModelVersionDetailOut(version).data)


class TrainApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(request=None, responses={202: out.DetailOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        training_request(project_id=self.project.id)
        return Response(out.DetailOut({"detail": "Retraining scheduled."}).data, status=status.HTTP_202_ACCEPTED)


class ModelDownloadApi(ProjectApiView):
    """The current model version to take away: ``?format=zip`` (default), ``torchscript``, ``onnx`` or ``json``."""

    permission_classes = [IsProjectManager]
    content_types = {"zip": "application/zip", "json": "application/json"}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["zip", "torchscript", "onnx", "json"], default="zip")],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **out.ERRORS},
    )
    def get(self, request: SignedInRequest, project_id: int) -> FileResponse:
        fmt = request.query_params.get("format", "zip")
        if fmt not in MODEL_EXPORT_FILES:
            valid = ", ".join(MODEL_EXPORT_FILES)
            raise ValidationError({"format": [f"Unknown model format {fmt!r}; valid formats: {valid}."]})
        version = model_version_current(project=self.project)
        if version is None:
            raise NotFound("This project has no ready model version yet; one is published after its first retrain.")
        path = model_version_export(version=version, fmt=fmt)
        name = f"{slugify(self.project.name) or 'project'}-v{version.number}-{path.name}"
        content_type = self.content_types.get(fmt, "application/octet-stream")
        return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type=content_type)
