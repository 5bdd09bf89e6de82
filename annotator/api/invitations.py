"""Invitations: a project's managers add a person by email address, making their account (with a
one-time link to choose a password) when no user has that address."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.models import Membership
from annotator.services.accounts import user_invite


class InvitationOut(serializers.Serializer):
    membership = out.MemberOut()
    created = serializers.BooleanField(help_text="Whether the account was made now.")
    link = serializers.CharField(
        allow_null=True, help_text="The one-time link to choose a password; null when the account has one."
    )
    emailed = serializers.BooleanField(help_text="Whether the email went out (the membership stands either way).")


class InvitationApi(ProjectApiView):
    """Managers invite someone by email address with a role; they are emailed the link."""

    permission_classes = [IsProjectManager]

    @extend_schema_serializer(component_name="InvitationIn")
    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254)
        role = serializers.ChoiceField(choices=Membership.Role.values, default=Membership.Role.ANNOTATOR)

    @extend_schema(request=InputSerializer, responses={201: InvitationOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = user_invite(
            project=self.project,
            email=serializer.validated_data["email"],
            role=serializer.validated_data["role"],
            invited_by=request.user,
            site_url=request.build_absolute_uri("/"),
        )
        return Response(InvitationOut(invitation).data, status=status.HTTP_201_CREATED)
