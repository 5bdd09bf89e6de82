"""Annotations: labeling an item, undoing one's last label, a project's annotations, and how
pre-labels help (the labeling stats)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.inputs import EXCLUDE, Pagination, query_id
from annotator.api.leased import NEXT, AnnotationNextOut, next_item_data, next_wanted
from annotator.api.permissions import IsProjectMember, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.kinds import kind_of
from annotator.models import Membership
from annotator.selectors.answers import annotation_answer_names
from annotator.selectors.boxes import undone_boxes
from annotator.selectors.dashboard import annotation_stats
from annotator.selectors.items import annotation_list, item_with_names
from annotator.selectors.projects import project_role
from annotator.services.annotations import annotation_create, annotation_undo


class AnnotationCreateApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema_serializer(component_name="AnnotationCreate")
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=100, required=False)  # type: ignore[assignment]  # a declared field, not Field.label
        labels = serializers.ListField(child=serializers.CharField(max_length=100), max_length=500, required=False)
        boxes = serializers.ListField(
            child=serializers.DictField(),
            max_length=1000,
            required=False,
            help_text=(
                "Box projects: the image's boxes, each {label, x, y, w, h} in pixels of the displayed image and "
                "optionally outcome (drawn, accepted, moved, relabeled, rejected) and confidence; [] nothing here."
            ),
        )
        client_token = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)
        duration_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        parameters=[NEXT, EXCLUDE],
        responses={
            201: AnnotationNextOut,
            200: AnnotationNextOut,
            204: OpenApiResponse(description="?next=1: the answer is stored, and nothing is left to label."),
            **out.ERRORS,
            409: out.CONFLICT,
        },
    )
    def post(self, request: SignedInRequest, item_id: int) -> Response:
        """Store the caller's answer (a retry with the same ``client_token`` returns the first one,
        200); with ``?next=1`` the response also carries their next item, leased."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        exclude = next_wanted(request)
        annotation, created = annotation_create(item=self.item, user=request.user, **serializer.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        data = dict(out.AnnotationOut(annotation, context={"project": self.project}).data)
        if exclude is not None:
            following = next_item_data(request, self.project, exclude, answered=self.item.id)
            if following is None:
                return Response(status=status.HTTP_204_NO_CONTENT)
            data["next"] = following
        return Response(data, status=code)


class UndoApi(ProjectApiView):
    permission_classes = [IsProjectMember]

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
        responses={200: out.ItemOut, 204: OpenApiResponse(description="Nothing to undo."), **out.ERRORS},
    )
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        project = self.project
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = serializer.validated_data.get("client_token")
        item = annotation_undo(project=project, user=request.user, client_token=token)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        shown = item_with_names(item.id)
        context = {"project": project, "show_prelabel": project.show_prelabels}
        data = out.ItemOut(shown, context=context).data
        if kind_of(project).boxes:  # the undone answer's boxes, for the page to show them again
            data["boxes"] = undone_boxes(item_id=item.id, user=request.user)
        return Response(data)


class AnnotationListApi(ProjectApiView):
    """A project's annotations, newest first, paginated: managers see everyone's, annotators their own."""

    permission_classes = [IsProjectMember]

    @extend_schema(
        parameters=[OpenApiParameter("active", bool), OpenApiParameter("user", int)],
        responses={200: out.AnnotationPageOut, **out.ERRORS},
    )
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        is_manager = project_role(user=request.user, project=self.project) == Membership.Role.MANAGER
        user_id = query_id(request, "user", what="user id")
        if not is_manager:
            user_id = request.user.pk
        active = {"true": True, "false": False}.get(request.query_params.get("active", "").lower())
        annotations = annotation_list(project=self.project, user_id=user_id, active=active)
        paginator = Pagination()
        page = paginator.paginate_queryset(annotations, request, view=self) or []
        answers = annotation_answer_names(annotation_ids=[annotation.id for annotation in page])
        context = {"project": self.project, "answers": answers}
        return paginator.get_paginated_response(out.AnnotationRowOut(page, many=True, context=context).data)


class AnnotationStatsApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(responses={200: out.StatsOut, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.StatsOut(annotation_stats(project=self.project)).data)
