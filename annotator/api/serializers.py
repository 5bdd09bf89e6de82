"""The API's responses: each serializer here turns a model object (or a selector's dict) into the
JSON a view returns, and is at the same time its shape in ``/api/schema/`` (drf-spectacular reads
them; schemathesis checks every response against them).

Numbers pass through as they are (``Number``), so that a response is exactly what the selectors
computed; free-form objects (a model's metrics, a job's parameters) are ``DictField``s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from annotator.api.box_serializers import AnnotationBoxFields, ItemBoxFields
from annotator.api.fields import Number
from annotator.kinds import kind_of
from annotator.models import (
    Annotation,
    Item,
    LabelClass,
    Membership,
    ModelVersion,
    Project,
    ReviewStatus,
    TaskKind,
)
from annotator.selectors.answers import annotation_answer_names, item_answer_names
from annotator.selectors.classes import class_coverage, project_classes
from annotator.selectors.model_versions import model_version_confusion, model_version_current, retrain_status
from annotator.selectors.projects import project_counts


def item_image_url(item: Item) -> str:
    """The item's image URL, named by its content (``?v=``): browsers keep what they saw (immutable)."""
    return f"{reverse('api-item-image', args=[item.id])}?v={item.sha256[:16]}"


class DetailOut(serializers.Serializer):
    detail = serializers.CharField()


# Projects and classes -------------------------------------------------------------------------------


class ClassOut(serializers.Serializer):
    name = serializers.CharField()
    hotkey = serializers.CharField(allow_blank=True)
    index = serializers.IntegerField()


class ClassNOut(serializers.Serializer):
    name = serializers.CharField()
    n = serializers.IntegerField(help_text="Labeled items with the class (box projects: images holding it).")
    boxes = serializers.IntegerField(required=False, help_text="Box projects only: the class's boxes.")


class ClassCountOut(serializers.Serializer):
    """A class with how many items carry it."""

    # context["counts"]: labeled items per class name (selectors.labels_per_class); 0 when absent.

    name = serializers.CharField()
    hotkey = serializers.CharField()
    index = serializers.IntegerField()
    n_labeled = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField())
    def get_n_labeled(self, label_class: LabelClass) -> int:
        return self.context.get("counts", {}).get(label_class.name, 0)


class ModelVersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ModelVersion.Status.values)
    strategy = serializers.CharField()
    n_labels = serializers.IntegerField()
    metrics = serializers.DictField(help_text="What the run measured (val_accuracy, its interval, ...).")
    error = serializers.CharField(allow_blank=True)
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)


class ClassFiguresOut(serializers.Serializer):
    name = serializers.CharField()
    precision = Number(allow_null=True, help_text="None: nothing was predicted as this class.")
    recall = Number(allow_null=True, help_text="None: no labeled item has this class.")
    support = serializers.IntegerField(help_text="Labeled items given this class.")


class ConfusionOut(serializers.Serializer):
    """Where a version goes wrong, out of fold (each labeled item predicted by a fold model that did
    not see its label, as the accuracy estimate is)."""

    n = serializers.IntegerField(help_text="Labeled items counted.")
    classes = serializers.ListField(child=serializers.CharField(), help_text="The classes, in output order.")
    cells = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="Single-label: [given, predicted, count] per non-zero cell (positions in classes); "
        "multi-label: [class, true positives, false positives, false negatives] per class.",
    )
    per_class = ClassFiguresOut(many=True)


class ModelVersionDetailOut(ModelVersionOut):
    confusion = serializers.SerializerMethodField(help_text="None: the version did not measure it.")

    @extend_schema_field(ConfusionOut(allow_null=True))
    def get_confusion(self, version: ModelVersion) -> Any:
        confusion = model_version_confusion(version=version)
        return None if confusion is None else ConfusionOut(confusion).data


class RetrainOut(serializers.Serializer):
    labels_until_next = serializers.IntegerField(help_text="Labels until the next retrain; 0 while one is on its way.")
    training = serializers.BooleanField(help_text="A retrain is requested or running.")


class ProjectOut(serializers.Serializer):
    """A project with its classes, queue counts, the model being served and how far the next one is."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    labels = serializers.SerializerMethodField()
    classes = serializers.SerializerMethodField()
    retrain_every = serializers.IntegerField()
    strategy = serializers.CharField()
    input_size = serializers.IntegerField()
    model_family = serializers.CharField()
    allow_flips = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=TaskKind.values)
    multi_label = serializers.BooleanField(help_text="The kind is multi_label.")
    show_prelabels = serializers.BooleanField()
    prelabel_threshold = Number(help_text="Pre-labels less confident than this are shown as unsure.")
    labels_per_item = serializers.IntegerField()
    lease_seconds = serializers.IntegerField()
    instructions = serializers.CharField(help_text="Instructions for annotators, in Markdown.")
    created = serializers.DateTimeField()
    counts = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    retrain = serializers.SerializerMethodField()
    under_covered = serializers.SerializerMethodField(
        help_text="Classes with too few labels, once the project has many."
    )

    def _classes(self, project: Project) -> list[LabelClass]:
        """The project's classes, read once for ``labels`` and ``classes``."""
        # The context is the dict the serializer was given; the stubs type it as a read-only Mapping.
        cache = self.context.setdefault("classes", {})  # type: ignore[attr-defined]
        if project.id not in cache:
            cache[project.id] = project_classes(project=project)
        return cache[project.id]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_labels(self, project: Project) -> list[str]:
        return [c.name for c in self._classes(project)]

    @extend_schema_field(ClassOut(many=True))
    def get_classes(self, project: Project) -> Any:
        return ClassOut(self._classes(project), many=True).data

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_counts(self, project: Project) -> dict[str, int]:
        return project_counts(project=project)

    @extend_schema_field(ModelVersionOut(allow_null=True))
    def get_model_version(self, project: Project) -> Any:
        current = model_version_current(project=project)
        return ModelVersionOut(current).data if current else None

    @extend_schema_field(RetrainOut())
    def get_retrain(self, project: Project) -> Any:
        return RetrainOut(retrain_status(project=project)).data

    @extend_schema_field(ClassNOut(many=True))
    def get_under_covered(self, project: Project) -> Any:
        return ClassNOut(class_coverage(project=project), many=True).data


class MemberOut(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(source="user.get_username")
    role = serializers.ChoiceField(choices=Membership.Role.values)


# Items and annotations ------------------------------------------------------------------------------


class PrelabelOut(serializers.Serializer):
    """The model's guess on an item."""

    # context["project"]: the item's project, whose prelabel_threshold decides ``unsure``.

    label = serializers.CharField(source="pred_label_name")  # type: ignore[assignment]  # a declared field, not Field.label
    confidence = Number(source="pred_confidence", allow_null=True)
    model_version = serializers.IntegerField(source="pred_version_number", allow_null=True)
    probs = serializers.ListField(source="pred_probs", child=Number(), allow_null=True)
    unsure = serializers.SerializerMethodField(
        help_text="Less confident than the project's prelabel_threshold: no suggestion."
    )

    @extend_schema_field(serializers.BooleanField())
    def get_unsure(self, item: Item) -> bool:
        return item.pred_confidence is None or item.pred_confidence < self.context["project"].prelabel_threshold


class AnswerFields:
    """The methods of ``label`` and ``labels``, the two fields that show an answer as the project's kind
    does (``Kind.as_json``: the class name on single-label projects, the list of names on multi-label
    ones, the other ``None``). A serializer declares both as ``SerializerMethodField`` where they go.

    context: the "project", and "answers", ``{id: class names}`` for the instances shown (from
    ``selectors.item_answer_names`` or ``annotation_answer_names``; read here, one query, when absent).
    """

    context: dict[str, Any]

    def answer_names(self, instance: Any) -> list[str] | None:
        raise NotImplementedError

    def given_names(self, instance: Any, read: Callable[[list[int]], dict[int, list[str]]]) -> list[str] | None:
        """The names from the context's "answers", else read with ``read`` once per instance (two fields ask)."""
        answers = self.context.get("answers")
        if answers is None:
            answers = self.__dict__.setdefault("_answers_read", {})
            if instance.id not in answers:
                answers[instance.id] = read([instance.id]).get(instance.id)
        return answers.get(instance.id)

    def _json(self, instance: Any) -> dict[str, Any]:
        return kind_of(self.context["project"]).as_json(self.answer_names(instance))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_label(self, instance: Any) -> str | None:
        return self._json(instance)["label"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_labels(self, instance: Any) -> list[str] | None:
        return self._json(instance)["labels"]


class ItemOut(AnswerFields, ItemBoxFields, serializers.Serializer):
    """An item as served to annotators; ``prelabel`` and ``score`` only where the caller may see the model's guesses."""

    # From an item carrying the names set by selectors.item_with_names (or item_list). context: the
    # "project", "show_prelabel" (False: no pre-label and no score), and "answers" (``AnswerFields``).

    id = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_name")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Item.Status.values)
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # a declared field, not Field.label
    labels = serializers.SerializerMethodField()
    prelabel = serializers.SerializerMethodField()
    score = serializers.SerializerMethodField()
    lease_until = serializers.DateTimeField(allow_null=True)
    thumbnail_url = serializers.SerializerMethodField(help_text="At most 256 pixels a side (JPEG), made once.")
    review_status = serializers.ChoiceField(choices=ReviewStatus.values)
    review_reason = serializers.CharField(
        allow_blank=True, help_text="Why it is flagged: label_issue, disagreement, manual."
    )
    agreement = Number(allow_null=True, help_text="Share of its annotators agreeing with the answer.")
    batch = serializers.IntegerField(allow_null=True, help_text="The number of the import that brought it.")
    created = serializers.DateTimeField()
    boxes = serializers.SerializerMethodField(help_text="Box projects: the item's boxes ([] nothing here); else null.")
    preboxes = serializers.SerializerMethodField(
        help_text="Box projects: the model's boxes at least as confident as the project's prelabel_threshold."
    )

    def answer_names(self, instance: Any) -> list[str] | None:
        """The item's answer; ``None`` while it has none (an empty answer of a labeled item is ``[]``)."""
        names = self.given_names(instance, lambda ids: item_answer_names(item_ids=ids))
        return names if names is not None else ([] if instance.status == Item.Status.LABELED else None)

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, item: Item) -> str:
        return item_image_url(item)

    @extend_schema_field(serializers.CharField())
    def get_thumbnail_url(self, item: Item) -> str:
        return f"{reverse('api-item-thumbnail', args=[item.id])}?v={item.sha256[:16]}"

    @extend_schema_field(PrelabelOut(allow_null=True))
    def get_prelabel(self, item: Item) -> Any:
        if not self.context["show_prelabel"] or item.pred_label_id is None or item.pred_version_id is None:
            return None
        return PrelabelOut(item, context=self.context).data

    @extend_schema_field(Number(allow_null=True))
    def get_score(self, item: Item) -> float | None:
        return item.score if self.context["show_prelabel"] else None


class ItemPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ItemOut(many=True)


class SkipOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ReleaseOut(serializers.Serializer):
    id = serializers.IntegerField()
    released = serializers.BooleanField()


class RejectedOut(serializers.Serializer):
    name = serializers.CharField()
    error = serializers.CharField()


class ImportSummaryOut(serializers.Serializer):
    batch = serializers.IntegerField(
        allow_null=True, help_text="The import's number (the data browser's batch filter); null if nothing was stored."
    )
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    labeled = serializers.IntegerField()
    rejected = RejectedOut(many=True)


class AnnotationAnswerFields(AnswerFields):
    def answer_names(self, instance: Any) -> list[str] | None:
        names = self.given_names(instance, lambda ids: annotation_answer_names(annotation_ids=ids))
        return names if names is not None else []


class AnnotationOut(AnnotationAnswerFields, AnnotationBoxFields, serializers.Serializer):
    # context: the "project", and "answers" (``AnswerFields``).
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # a declared field, not Field.label
    labels = serializers.SerializerMethodField()
    boxes = serializers.SerializerMethodField(help_text="Box projects: the boxes sent, rejected pre-boxes too.")
    prelabel = serializers.ChoiceField(choices=Annotation.Prelabel.values)
    duration_ms = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField()


class AnnotationRowOut(AnnotationAnswerFields, serializers.Serializer):
    # context: the "project", and "answers" (``AnswerFields``).
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # a declared field, not Field.label
    labels = serializers.SerializerMethodField()
    user = serializers.CharField(source="user.get_username", allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.source
    prelabel = serializers.CharField()
    duration_ms = serializers.IntegerField(allow_null=True)
    active = serializers.BooleanField()
    created = serializers.DateTimeField()


class AnnotationPageOut(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = AnnotationRowOut(many=True)


class StatsOut(serializers.Serializer):
    n_labels = serializers.IntegerField()
    accepted = serializers.IntegerField()
    corrected = serializers.IntegerField()
    none = serializers.IntegerField()
    acceptance_rate = Number(allow_null=True)
    median_s_with_prelabel = Number(allow_null=True)
    median_s_without_prelabel = Number(allow_null=True)


# Dashboard and agreement ----------------------------------------------------------------------------


class CurvePointOut(serializers.Serializer):
    number = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    val_accuracy = Number()
    val_accuracy_low = Number(allow_null=True, help_text="The estimate's 95% interval.")
    val_accuracy_high = Number(allow_null=True)
    val_n = serializers.IntegerField(allow_null=True, help_text="Labels the estimate rests on.")


class ThroughputOut(serializers.Serializer):
    """One annotator's pace: labels, labels per hour, pre-labels accepted, median seconds per label."""

    user = serializers.CharField()
    n_labels = serializers.IntegerField()
    first = serializers.DateTimeField()
    last = serializers.DateTimeField()
    labels_per_hour = Number(allow_null=True)
    accepted = serializers.IntegerField()
    corrected = serializers.IntegerField()
    acceptance_rate = Number(allow_null=True)
    median_s = Number(allow_null=True)


class TrainingRunOut(serializers.Serializer):
    number = serializers.IntegerField()
    progress = Number()
    n_labels = serializers.IntegerField()
    created = serializers.DateTimeField()


class FailureOut(serializers.Serializer):
    number = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    finished = serializers.DateTimeField(allow_null=True)


class AnnotatorAgreementOut(serializers.Serializer):
    username = serializers.CharField()
    n = serializers.IntegerField()
    agreement_with_consensus = Number()


class AgreementOut(serializers.Serializer):
    """Agreement between annotators on items labeled by several: mean agreement, Fleiss' kappa, per person."""

    items = serializers.IntegerField()
    mean_agreement = Number(allow_null=True)
    fleiss_kappa = Number(allow_null=True)
    annotators = AnnotatorAgreementOut(many=True)


class DashboardOut(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    learning_curve = CurvePointOut(many=True)
    classes = ClassNOut(many=True)
    under_covered = ClassNOut(many=True, help_text="Classes with too few labels, once the project has many.")
    annotators = ThroughputOut(many=True)
    training = TrainingRunOut(allow_null=True, help_text="The run in progress.")
    training_requested = serializers.BooleanField()
    last_error = FailureOut(allow_null=True, help_text="The latest failed run.")
    agreement = AgreementOut(allow_null=True, help_text="Projects whose items several people label.")


BAD_REQUEST = OpenApiResponse(description="Invalid input; the body names the field and the reason.")
FORBIDDEN = OpenApiResponse(DetailOut, description="Not allowed for this role.")
NOT_FOUND = OpenApiResponse(DetailOut, description="No such object, or not a member of its project.")
ERRORS = {400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND}
CONFLICT = OpenApiResponse(DetailOut, description="In conflict with what is stored, or held by someone else.")
