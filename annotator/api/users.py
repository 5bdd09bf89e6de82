"""Users as managers look for them when adding members: suggestions by name, username or email."""

from __future__ import annotations

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator.api import serializers as out
from annotator.auth import SignedInRequest
from annotator.selectors.users import SUGGESTIONS, user_can_search_users, user_search


class CanSearchUsers(BasePermission):
    """Admins and the managers of at least one project."""

    message = "Only admins and project managers may look up users."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_authenticated and user_can_search_users(user=user)


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(source="get_full_name")
    email = serializers.CharField()


class UserSearchApi(APIView):
    """Up to ten active users whose username, first or last name or email starts with ``q``."""

    permission_classes = [CanSearchUsers]

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="What the name, username or email starts with.")],
        responses={200: UserOut(many=True), 403: out.FORBIDDEN},
    )
    def get(self, request: SignedInRequest) -> Response:
        query = str(request.query_params.get("q", "")).replace("\x00", "")[:150]  # PostgreSQL refuses NUL
        return Response(UserOut(user_search(query=query, limit=SUGGESTIONS), many=True).data)
