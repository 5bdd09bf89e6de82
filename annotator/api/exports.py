"""The labeled items as a file, streamed now (CSV, JSON Lines, COCO, and an ImageFolder zip on
classification projects, YOLO or Pascal VOC zips on box projects); managers only. ``jobs`` writes
the same exports in the background."""

from __future__ import annotations

from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError

from annotator.api import serializers as out
from annotator.api.inputs import flag_param
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.responses import EXPORT_FORMATS, export_response

EXPORT_FORMAT = OpenApiParameter(
    "format",
    str,
    enum=list(EXPORT_FORMATS),
    default="csv",
    description=(
        "csv, jsonl and coco for every project; imagefolder for classification and multi-label projects; "
        "yolo and voc (zips of label files) for box projects. Box projects' csv has a row per box "
        "(filename,width,height,label,x,y,w,h,annotator,created), their jsonl a line per image with its "
        "boxes, their coco bbox annotations in pixels. A format the project's kind lacks is a 400."
    ),
)


class ExportApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(
        parameters=[EXPORT_FORMAT, OpenApiParameter("include_ambiguous", bool)],
        responses={(200, "*/*"): OpenApiTypes.BINARY, **out.ERRORS},
    )
    def get(self, request: SignedInRequest, project_id: int) -> HttpResponseBase:
        fmt = request.query_params.get("format", "csv")
        try:
            return export_response(self.project, fmt, include_ambiguous=flag_param(request, "include_ambiguous"))
        except ValueError as exc:
            raise ValidationError({"format": [str(exc)]}) from exc
