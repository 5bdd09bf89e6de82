"""Items: the next one to label, one item and its image, skipping and releasing it, a project's
items (paginated, filtered) and importing files into it."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotator.api import serializers as out
from annotator.api.inputs import EXCLUDE, ID_MAX, Pagination, flag_param, query_ids
from annotator.api.leased import NEXT, SkipNextOut, next_item_data, next_wanted
from annotator.api.permissions import IsProjectManagerOrReadOnly, IsProjectMember, ProjectApiView
from annotator.auth import SignedInRequest
from annotator.kinds import kind_of
from annotator.models import BoxRole, Item
from annotator.responses import item_image_response, item_thumbnail_response
from annotator.selectors.answers import item_answer_names
from annotator.selectors.boxes import item_boxes_json
from annotator.selectors.classes import class_order
from annotator.selectors.items import ORDERS, PREDICTION_ORDERS, item_list, item_with_names, items_name
from annotator.selectors.projects import prelabels_visible
from annotator.services.imports import items_import_uploads
from annotator.services.leasing import item_release, item_skip, items_release_mine


class ImportIn(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="Images or .zip files.")


class NextItemApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(
        parameters=[EXCLUDE],
        responses={200: out.ItemOut, 204: OpenApiResponse(description="Nothing left to label."), **out.ERRORS},
    )
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        data = next_item_data(request, self.project, query_ids(request, "exclude"))
        if data is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(data)


class ItemDetailApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(responses={200: out.ItemOut, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, item_id: int) -> Response:
        shown = item_with_names(self.item.id)
        visible = prelabels_visible(user=request.user, project=self.project)
        return Response(out.ItemOut(shown, context={"project": self.project, "show_prelabel": visible}).data)


class ItemImageApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    """What the pages show (the display rendition made on import, or the file itself); ``?original=1``
    the file as uploaded, as a download."""

    @extend_schema(
        parameters=[OpenApiParameter("original", bool, description="1: the file as uploaded, as an attachment.")],
        responses={(200, "image/*"): OpenApiTypes.BINARY, 404: out.NOT_FOUND},
    )
    def get(self, request: SignedInRequest, item_id: int) -> HttpResponse | FileResponse:
        return item_image_response(self.item, original=flag_param(request, "original"))


class ItemThumbnailApi(ProjectApiView):
    """The item's image shrunk to at most 256 pixels a side (JPEG), made once and kept."""

    permission_classes = [IsProjectMember]

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: out.NOT_FOUND})
    def get(self, request: SignedInRequest, item_id: int) -> HttpResponse | FileResponse:
        return item_thumbnail_response(self.item)


class ItemSkipApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(
        request=None,
        parameters=[NEXT, EXCLUDE],
        responses={
            200: SkipNextOut,
            204: OpenApiResponse(description="?next=1: skipped, and nothing left to label."),
            **out.ERRORS,
            409: out.CONFLICT,
        },
    )
    def post(self, request: SignedInRequest, item_id: int) -> Response:
        exclude = next_wanted(request)
        item_skip(item=self.item, user=request.user)
        data = dict(out.SkipOut({"id": self.item.id, "status": "skipped"}).data)
        if exclude is not None:
            following = next_item_data(request, self.project, exclude, answered=self.item.id)
            if following is None:
                return Response(status=status.HTTP_204_NO_CONTENT)
            data["next"] = following
        return Response(data)


class ItemReleaseApi(ProjectApiView):
    permission_classes = [IsProjectMember]

    @extend_schema(request=None, responses={200: out.ReleaseOut, **out.ERRORS})
    def post(self, request: SignedInRequest, item_id: int) -> Response:
        item_release(item=self.item, user=request.user)
        return Response(out.ReleaseOut({"id": self.item.id, "released": True}).data)


class ReleaseMineIn(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=1000, help_text="Items whose lease to give back."
    )


class ReleasedOut(serializers.Serializer):
    released = serializers.IntegerField(help_text="How many of the caller's leases were given back.")


class ProjectReleaseApi(ProjectApiView):
    """Give back the caller's leases on several items at once: what a labeling page sends
    (``navigator.sendBeacon``, a form with the CSRF token) when it closes, so that its prefetched
    items go to the next annotator at once instead of after ``lease_seconds``."""

    permission_classes = [IsProjectMember]

    @extend_schema(request=ReleaseMineIn, responses={200: ReleasedOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        data = request.data
        # A beacon's form repeats the field (ids=1&ids=2); JSON sends {"ids": [...]}.
        if hasattr(data, "getlist"):
            data = {"ids": data.getlist("ids")} if "ids" in data else {}
        serializer = ReleaseMineIn(data=data)
        serializer.is_valid(raise_exception=True)
        freed = items_release_mine(project=self.project, user=request.user, item_ids=serializer.validated_data["ids"])
        return Response(ReleasedOut({"released": freed}).data)


class ItemsApi(ProjectApiView):
    """``GET``: the project's items (paginated, filtered); ``POST``: import files into it."""

    permission_classes = [IsProjectManagerOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="ItemFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Item.Status.values, required=False)
        label = serializers.CharField(
            max_length=100, required=False, help_text="A class name: items whose answer has it."
        )  # type: ignore[assignment]  # a declared field, not Field.label
        predicted = serializers.CharField(max_length=100, required=False, help_text="A class name: the model's guess.")
        min_score = serializers.FloatField(required=False)
        max_score = serializers.FloatField(required=False)
        conf_min = serializers.FloatField(min_value=0, max_value=1, required=False, help_text="The guess's confidence.")
        conf_max = serializers.FloatField(min_value=0, max_value=1, required=False)
        disagreement = serializers.BooleanField(required=False, help_text="Only items whose annotators disagreed.")
        flagged = serializers.BooleanField(required=False, help_text="Only items waiting for review.")
        annotator = serializers.IntegerField(
            min_value=1, max_value=ID_MAX, required=False, help_text="A user id: items with their current label."
        )
        batch = serializers.IntegerField(
            min_value=1, max_value=ID_MAX, required=False, help_text="An import's number (its summary's batch)."
        )
        boxes = serializers.ChoiceField(
            choices=["none", "some"], required=False, help_text="Box projects: nothing here (labeled), or some boxes."
        )
        min_boxes = serializers.IntegerField(min_value=0, max_value=100_000, required=False, help_text="Box projects.")
        max_boxes = serializers.IntegerField(min_value=0, max_value=100_000, required=False, help_text="Box projects.")
        order = serializers.ChoiceField(choices=list(ORDERS), default="id")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            for low, high in (("conf_min", "conf_max"), ("min_score", "max_score")):
                if low in attrs and high in attrs and attrs[low] > attrs[high]:
                    raise ValidationError({low: [f"{low} ({attrs[low]}) is above {high} ({attrs[high]})."]})
            return attrs

    @extend_schema(parameters=[FilterSerializer], responses={200: out.ItemPageOut, **out.ERRORS})
    def get(self, request: SignedInRequest, project_id: int) -> Response:
        project = self.project
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        visible = prelabels_visible(user=request.user, project=project)
        if not visible:
            # Filtering or ordering on the model's guess would show it as well as the fields would.
            data = filters.validated_data
            guesses = ("predicted", "min_score", "max_score", "conf_min", "conf_max")
            refused = [name for name in guesses if name in data]
            refused += ["order"] if data["order"] in PREDICTION_ORDERS else []
            if refused:
                reason = "This project hides the model's pre-labels (and scores) from annotators."
                raise ValidationError({name: [reason] for name in refused})
        named = {
            name: filters.validated_data[name] for name in ("label", "predicted") if filters.validated_data.get(name)
        }
        known = class_order(project_id=project.id).names if named else []
        unknown = {name: value for name, value in named.items() if value not in known}
        if unknown:
            classes = ", ".join(known)
            raise ValidationError(
                {name: [f"No class {value!r}; classes: {classes}."] for name, value in unknown.items()}
            )
        items = item_list(project=project, **filters.validated_data)
        paginator = Pagination()
        page = items_name(project=project, items=list(paginator.paginate_queryset(items, request, view=self) or []))
        ids = [item.id for item in page]
        context = {"project": project, "show_prelabel": visible, "answers": item_answer_names(item_ids=ids)}
        if kind_of(project).boxes:  # each page's boxes in one query, pre-boxes in another
            threshold = project.prelabel_threshold
            context["boxes"] = item_boxes_json(item_ids=ids)
            context["preboxes"] = item_boxes_json(item_ids=ids, role=BoxRole.PREDICTED, min_confidence=threshold)
        shown = out.ItemOut(page, many=True, context=context)
        return paginator.get_paginated_response(shown.data)

    @extend_schema(request={"multipart/form-data": ImportIn}, responses={201: out.ImportSummaryOut, **out.ERRORS})
    def post(self, request: SignedInRequest, project_id: int) -> Response:
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"files": ["Attach one or more images or .zip files as 'files'."]})
        summary = items_import_uploads(project=self.project, files=[(f.name, f) for f in files], user=request.user)
        return Response(out.ImportSummaryOut(summary).data, status=status.HTTP_201_CREATED)
