"""The shapes of API responses, for the OpenAPI schema (``/api/schema/``) only.

The views build plain dicts; these serializers describe them so that drf-spectacular can publish
an exact schema (and schemathesis can check every response against it).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class DetailOut(serializers.Serializer):
    detail = serializers.CharField()


class ClassOut(serializers.Serializer):
    name = serializers.CharField()
    hotkey = serializers.CharField(allow_blank=True)
    index = serializers.IntegerField()


class ModelVersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["training", "ready", "failed"])
    strategy = serializers.CharField()
    n_labels = serializers.IntegerField()
    metrics = serializers.DictField()
    error = serializers.CharField(allow_blank=True)
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)


class ClassCountOut(serializers.Serializer):
    name = serializers.CharField()
    hotkey = serializers.CharField()
    index = serializers.IntegerField()
    n_labeled = serializers.IntegerField()


class ClassNOut(serializers.Serializer):
    name = serializers.CharField()
    n = serializers.IntegerField()


class RetrainOut(serializers.Serializer):
    labels_until_next = serializers.IntegerField(help_text="Labels until the next retrain; 0 while one is on its way.")
    training = serializers.BooleanField(help_text="A retrain is requested or running.")


class ProjectOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    classes = ClassOut(many=True)
    retrain_every = serializers.IntegerField()
    strategy = serializers.CharField()
    input_size = serializers.IntegerField()
    model_family = serializers.CharField()
    allow_flips = serializers.BooleanField()
    multi_label = serializers.BooleanField()
    show_prelabels = serializers.BooleanField()
    prelabel_threshold = serializers.FloatField(help_text="Pre-labels less confident than this are shown as unsure.")
    labels_per_item = serializers.IntegerField()
    lease_seconds = serializers.IntegerField()
    created = serializers.DateTimeField()
    counts = serializers.DictField(child=serializers.IntegerField())
    model_version = ModelVersionOut(allow_null=True)
    retrain = RetrainOut()
    under_covered = ClassNOut(many=True, help_text="Classes with too few labels, once the project has many.")


class PrelabelOut(serializers.Serializer):
    label = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.IntegerField(allow_null=True)
    probs = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    unsure = serializers.BooleanField(help_text="Less confident than the project's prelabel_threshold: no suggestion.")


class ItemOut(serializers.Serializer):
    id = serializers.IntegerField()
    image_url = serializers.CharField()
    filename = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["unlabeled", "labeled", "skipped"])
    label = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)
    prelabel = PrelabelOut(allow_null=True)
    score = serializers.FloatField(allow_null=True)
    lease_until = serializers.DateTimeField(allow_null=True)


class AnnotationOut(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    label = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)
    prelabel = serializers.ChoiceField(choices=["accepted", "corrected", "none"])
    created = serializers.DateTimeField()


class RejectedOut(serializers.Serializer):
    name = serializers.CharField()
    error = serializers.CharField()


class ImportSummaryOut(serializers.Serializer):
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    labeled = serializers.IntegerField()
    rejected = RejectedOut(many=True)


class StatsOut(serializers.Serializer):
    n_labels = serializers.IntegerField()
    accepted = serializers.IntegerField()
    corrected = serializers.IntegerField()
    none = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    median_s_with_prelabel = serializers.FloatField(allow_null=True)
    median_s_without_prelabel = serializers.FloatField(allow_null=True)


class SkipOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ReleaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    released = serializers.BooleanField()


class ImportIn(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="Images or .zip files.")


BAD_REQUEST = OpenApiResponse(description="Invalid input; the body names the field and the reason.")
FORBIDDEN = OpenApiResponse(DetailOut, description="Not allowed for this role.")
NOT_FOUND = OpenApiResponse(DetailOut, description="No such object, or not a member of its project.")
ERRORS = {400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND}
CONFLICT = OpenApiResponse(DetailOut, description="In conflict with what is stored, or held by someone else.")
BINARY = OpenApiResponse(description="A file download.")
EXCLUDE = OpenApiParameter("exclude", str, description="Comma-separated ids of items the caller already holds.")
EXPORT_FORMAT = OpenApiParameter("format", str, enum=["csv", "jsonl", "coco", "imagefolder"], default="csv")


class MemberOut(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=["manager", "annotator"])


class ItemPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ItemOut(many=True)


class AnnotationRowOut(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    label = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)
    user = serializers.CharField(allow_null=True)
    source = serializers.CharField()
    prelabel = serializers.CharField()
    duration_ms = serializers.IntegerField(allow_null=True)
    active = serializers.BooleanField()
    created = serializers.DateTimeField()


class AnnotationPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = AnnotationRowOut(many=True)


class CurvePointOut(serializers.Serializer):
    number = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    val_accuracy = serializers.FloatField()
    val_accuracy_low = serializers.FloatField(allow_null=True, help_text="The estimate's 95% interval.")
    val_accuracy_high = serializers.FloatField(allow_null=True)
    val_n = serializers.IntegerField(allow_null=True, help_text="Labels the estimate rests on.")


class DashboardOut(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    learning_curve = CurvePointOut(many=True)
    classes = ClassNOut(many=True)
    under_covered = ClassNOut(many=True, help_text="Classes with too few labels, once the project has many.")
    annotators = serializers.ListField(child=serializers.DictField())
    training = serializers.DictField(allow_null=True)
    training_requested = serializers.BooleanField()
    last_error = serializers.DictField(allow_null=True)
    agreement = serializers.DictField(allow_null=True)
