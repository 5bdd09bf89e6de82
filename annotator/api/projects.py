"""Projects: the list a user sees, creating one, reading one and changing its settings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api import serializers as out
from annotator.api.inputs import range_field
from annotator.api.permissions import CanCreateProjects, IsProjectManagerOrReadOnly, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    INSTRUCTIONS_MAX_LENGTH,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    ModelFamily,
    QueryStrategy,
    TaskKind,
)
from annotator.selectors.projects import project_list_for_user
from annotator.services.projects import project_create, project_settings_update


def instructions_field(**kwargs: Any) -> serializers.CharField:
    """The instructions for annotators: Markdown, ``""`` for none."""
    return serializers.CharField(
        max_length=INSTRUCTIONS_MAX_LENGTH,
        allow_blank=True,
        help_text="Instructions for annotators, in Markdown (no raw HTML); shown on the labeling page.",
        **kwargs,
    )


class ProjectListCreateApi(APIView):
    permission_classes = [CanCreateProjects]

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
        kind = serializers.ChoiceField(
            choices=TaskKind.values, required=False, help_text="The task kind; default classification."
        )
        multi_label = serializers.BooleanField(
            required=False, help_text="true: the same as kind multi_label (kept as an alias)."
        )
        labels_per_item = range_field(LABELS_PER_ITEM, default=1)
        show_prelabels = serializers.BooleanField(default=True)
        lease_seconds = range_field(LEASE_SECONDS, required=False)
        prelabel_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        instructions = instructions_field(default="")

    @extend_schema(responses={200: out.ProjectOut(many=True)})
    def get(self, request: SignedInRequest) -> Response:
        projects = project_list_for_user(user=request.user).order_by("id")
        return Response(out.ProjectOut(projects, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: out.ProjectOut, 400: out.BAD_REQUEST, 403: out.FORBIDDEN},
        description="Needs the permission to create projects (“Can add project”), which an admin grants.",
    )
    def post(self, request: SignedInRequest) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(user=request.user, **serializer.validated_data)
        return Response(out.ProjectOut(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ProjectApiView):
    permission_classes = [IsProjectManagerOrReadOnly]

    @extend_schema_serializer(component_name="ProjectSettings")
    class SettingsSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        show_prelabels = serializers.BooleanField(required=False)
        prelabel_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        labels_per_item = range_field(LABELS_PER_ITEM, required=False)
        lease_seconds = range_field(LEASE_SECONDS, required=False)
        retrain_every = range_field(RETRAIN_EVERY, required=False)
        strategy = serializers.ChoiceField(choices=QueryStrategy.values, required=False)
        allow_flips = serializers.BooleanField(required=False, help_text="Mirror images in training; the next run.")
        instructions = instructions_field(required=False)

    @extend_schema(responses={200: out.ProjectOut, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.ProjectOut(self.project).data)

    @extend_schema(request=SettingsSerializer, responses={200: out.ProjectOut, **out.ERRORS})
    def patch(self, request: SignedInRequest, project_id: int) -> Response:
        """Managers change the project's name, labeling settings and instructions; fields left out stay as
        they are. The task kind, model family and input size are fixed when the project is created."""
        serializer = self.SettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        unknown = sorted(set(request.data) - set(serializer.fields))
        if unknown:
            raise ValidationError({name: ["This setting cannot be changed (or does not exist)."] for name in unknown})
        project = project_settings_update(project=self.project, **serializer.validated_data)
        return Response(out.ProjectOut(project).data)
