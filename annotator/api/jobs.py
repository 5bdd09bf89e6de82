"""Background jobs, for managers: queueing an import (a server folder, a manifest, or uploaded
files) or an export, following a job, and downloading what an export wrote."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.parsers import JSONParser
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import Job
from annotator.selectors.jobs import job_list
from annotator.services.jobs import (
    JOB_EXPORT_FORMATS,
    job_export_request,
    job_file_path,
    job_import_request,
    job_upload_import_request,
)


class JobOut(serializers.Serializer):
    """A background import or export and how far it is."""

    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    kind = serializers.ChoiceField(choices=Job.Kind.values)
    status = serializers.ChoiceField(choices=Job.Status.values)
    progress = out.Number(help_text="Fraction done, 0..1.")
    params = serializers.SerializerMethodField(
        help_text="What was asked (folder, format, ...); for kept files only whether there are any."
    )
    summary = serializers.DictField(help_text="The outcome: counts, rejected files.")
    error = serializers.CharField(allow_blank=True)
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(help_text="A finished export's file.")

    @extend_schema_field(serializers.DictField())
    def get_params(self, job: Job) -> dict[str, Any]:
        """No server paths of kept files, only whether there are any."""
        params = job.params
        shown = {k: v for k, v in params.items() if k not in {"manifest", "uploads", "names"}}
        shown["manifest"] = "manifest" in params
        if "names" in params:
            shown["files"] = len(params["names"])
        return shown

    @extend_schema_field(serializers.CharField())
    def get_url(self, job: Job) -> str:
        return reverse("api-job", args=[job.id])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, job: Job) -> str | None:
        done_export = job.kind == "export" and job.status == "done" and bool(job.file)
        return reverse("api-job-download", args=[job.id]) if done_export else None


class JobImportApi(ProjectApiView):
    """Queue a background import of a server folder under ``IMPORT_ROOTS``, or of a manifest CSV."""

    permission_classes = [IsProjectManager]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        folder = serializers.CharField(max_length=4096, required=False)
        manifest = serializers.FileField(required=False)
        files = serializers.ListField(child=serializers.FileField(), required=False)

        class Meta:
            ref_name = "JobImportIn"

    @extend_schema(request=InputSerializer, responses={202: JobOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        files = request.FILES.getlist("files")
        if files:
            job = job_upload_import_request(project=self.project, user=request.user, files=[(f.name, f) for f in files])
            return Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not data.get("folder"):
            raise ValidationError({"folder": ["Give a server folder (and optionally a manifest), or attach files."]})
        job = job_import_request(
            project=self.project, user=request.user, folder=data["folder"], manifest=data.get("manifest")
        )
        return Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)


class JobExportApi(ProjectApiView):
    """Queue a background export to a file; ``GET /api/jobs/{id}/`` follows it."""

    permission_classes = [IsProjectManager]

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(
            choices=JOB_EXPORT_FORMATS,
            default="csv",
            help_text="csv, jsonl, coco for every project; imagefolder for class projects, yolo and voc for box ones.",
        )
        images = serializers.BooleanField(default=False)
        only_reviewed = serializers.BooleanField(default=False)
        include_ambiguous = serializers.BooleanField(default=False)

        class Meta:
            ref_name = "JobExportIn"

    @extend_schema(request=InputSerializer, responses={202: JobOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = job_export_request(
            project=self.project,
            user=request.user,
            fmt=data["format"],
            images=data["images"],
            only_reviewed=data["only_reviewed"],
            include_ambiguous=data["include_ambiguous"],
        )
        return Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)


class JobListApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: JobOut(many=True), **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(JobOut(job_list(project=self.project), many=True).data)


class JobDetailApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: JobOut, **out.ERRORS})
    def get(self, request: SignedInRequest, job_id: int) -> Response:
        return Response(JobOut(self.job).data)


class JobDownloadApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY, **out.ERRORS})
    def get(self, request: SignedInRequest, job_id: int) -> FileResponse:
        job = self.job
        path = job_file_path(job=job)
        if path is None:
            raise NotFound("This job has no file to download (not a finished export, or the file was removed).")
        name = path.name.split("-", 1)[-1] if path.name.startswith(f"job{job.id}-") else path.name
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
