"""A project's members: everyone in the project reads the list; managers add people, change roles
and remove members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.permissions import IsProjectManager, IsProjectManagerOrReadOnly, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import Membership
from annotator.selectors.projects import membership_list
from annotator.services.members import membership_add, membership_remove


class MemberListApi(ProjectApiView):
    """A project's members: everyone in the project reads the list; managers add people or change roles."""

    permission_classes = [IsProjectManagerOrReadOnly]

    @extend_schema_serializer(component_name="MemberAdd")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Membership.Role.values, default=Membership.Role.ANNOTATOR)

    @extend_schema(responses={200: out.MemberOut(many=True), 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.MemberOut(membership_list(project=self.project), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: out.MemberOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=serializer.validated_data["username"]).first()
        if user is None:
            raise ValidationError({"username": ["No user with this username."]})
        membership = membership_add(project=self.project, user=user, role=serializer.validated_data["role"])
        return Response(out.MemberOut(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(ProjectApiView):
    permission_classes = [IsProjectManager]

    @extend_schema(request=None, responses={204: None, **out.ERRORS})
    def delete(self, request: SignedInRequest, project_id: int, user_id: int) -> Response:
        membership = membership_list(project=self.project).filter(user_id=user_id).first()
        if membership is None:
            raise NotFound("This user is not a member of the project.")
        membership_remove(project=self.project, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
