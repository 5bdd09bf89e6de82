"""A project's classes: the list with how many items carry each, and managers appending one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.inputs import ClassNameField
from annotator.api.permissions import IsProjectManagerOrReadOnly, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.selectors.classes import labels_per_class, project_classes
from annotator.services.classes import label_class_add


class LabelClassListApi(ProjectApiView):
    """A project's classes in output order with how many items carry each; managers append classes."""

    permission_classes = [IsProjectManagerOrReadOnly]

    @extend_schema_serializer(component_name="ClassAdd")
    class InputSerializer(serializers.Serializer):
        name = ClassNameField()
        hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True)

    @extend_schema(responses={200: out.ClassCountOut(many=True), 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        counts = {row["name"]: row["n"] for row in labels_per_class(project=self.project)}
        classes = project_classes(project=self.project)
        return Response(out.ClassCountOut(classes, many=True, context={"counts": counts}).data)

    @extend_schema(request=InputSerializer, responses={201: out.ClassCountOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        label_class = label_class_add(project=self.project, **serializer.validated_data)
        return Response(out.ClassCountOut(label_class).data, status=status.HTTP_201_CREATED)
