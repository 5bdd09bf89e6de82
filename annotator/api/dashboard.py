"""Figures for managers: the project's dashboard and agreement between annotators."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.permissions import IsProjectManager, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.selectors.agreement import agreement_stats
from annotator.selectors.dashboard import project_dashboard


class ProjectDashboardApi(ProjectApiView):
    """The managers' dashboard figures (``project_dashboard``); the project page polls it."""

    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: out.DashboardOut, **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.DashboardOut(project_dashboard(project=self.project)).data)


class AgreementApi(ProjectApiView):
    """Agreement between annotators on overlapped items (``labels_per_item`` > 1); managers only."""

    permission_classes = [IsProjectManager]

    @extend_schema(responses={200: out.AgreementOut, **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        return Response(out.AgreementOut(agreement_stats(project=self.project)).data)
