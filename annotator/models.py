"""The schema: projects and their classes, items in the queue, annotations, model versions.

Invariants live here as constraints and indexes; behaviour lives in services and selectors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotator.box_models import AnnotationBox, BoxIssueKind, BoxOutcome, BoxRole, ItemBox  # noqa: F401 (re-exported)
from annotator.class_names import (
    LABEL_CLASS_NAME_MAX_LENGTH,
    validate_label_class_name,
)
from annotator.kinds import KINDS
from ml import strategies

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class QueryStrategy(models.TextChoices):
    LEAST_CONFIDENCE = "least_confidence", "Least confidence"
    MARGIN = "margin", "Margin"
    ENTROPY = "entropy", "Entropy"
    BALD = "bald", "BALD (MC dropout)"
    VARIATION_RATIOS = "variation_ratios", "Variation ratios (MC dropout)"
    RANDOM = "random", "Random"


#: A new project's strategy: the one that did best from a cold start in the benchmarks (``ml.strategies``).
DEFAULT_STRATEGY = QueryStrategy(strategies.DEFAULT_STRATEGY)


class TaskKind(models.TextChoices):
    """What an answer is: how it is validated, trained on, scored and exported (``annotator.kinds``)."""

    CLASSIFICATION = "classification", "One class per image"
    MULTI_LABEL = "multi_label", "Any number of classes per image"
    BOXES = "boxes", "Boxes around the objects in each image"


class ModelFamily(models.TextChoices):
    CNN = "cnn", "Small CNN trained from scratch"
    PRETRAINED = "pretrained", "Frozen pretrained backbone + small head"
    TORCHSCRIPT = "torchscript", "Your TorchScript backbone + small head"


@dataclass(frozen=True)
class Range:
    """The inclusive range of an integer setting, defined once: the model field's validators, the bounds
    of the API's and the pages' fields, and the services' checks all come from it, with one message
    that says the range."""

    name: str
    low: int
    high: int
    unit: str = ""

    @property
    def message(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} must be between {self.low} and {self.high}{unit}."

    @property
    def error_messages(self) -> dict[str, StrOrPromise]:
        """A form or serializer field's ``error_messages``: the range's message for either bound."""
        return {"min_value": self.message, "max_value": self.message}

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def validators(self) -> list[MinValueValidator | MaxValueValidator]:
        return [MinValueValidator(self.low, message=self.message), MaxValueValidator(self.high, message=self.message)]


RETRAIN_EVERY = Range("retrain_every", 1, 100_000)
LABELS_PER_ITEM = Range("labels_per_item", 1, 20)
LEASE_SECONDS = Range("lease_seconds", 10, 86_400, "seconds")
#: From 16: the smallest input the CNN takes (``ml.models.cnn.build_model``).
INPUT_SIZE = Range("input_size", 16, 512, "pixels")
#: The longest instructions for annotators, in characters (the forms and the API enforce it).
INSTRUCTIONS_MAX_LENGTH = 20_000


class Project(models.Model):
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    retrain_every = models.PositiveIntegerField(
        default=10, validators=RETRAIN_EVERY.validators(), help_text="Retrain after this many new labels."
    )
    strategy = models.CharField(max_length=32, choices=QueryStrategy.choices, default=DEFAULT_STRATEGY)
    input_size = models.PositiveSmallIntegerField(
        default=32, validators=INPUT_SIZE.validators(), help_text="Side of the square model input, pixels."
    )
    model_family = models.CharField(max_length=16, choices=ModelFamily.choices, default=ModelFamily.CNN)
    backbone_path = models.CharField(
        max_length=500, blank=True, help_text="TorchScript backbone file, for the torchscript family."
    )
    allow_flips = models.BooleanField(default=False, help_text="Mirror images in training augmentation.")
    kind = models.CharField(max_length=32, choices=TaskKind.choices, default=TaskKind.CLASSIFICATION)
    show_prelabels = models.BooleanField(default=True, help_text="Show the model's pre-labels to annotators.")
    labels_per_item = models.PositiveSmallIntegerField(
        default=1, validators=LABELS_PER_ITEM.validators(), help_text="Different annotators who label each item."
    )
    lease_seconds = models.PositiveIntegerField(
        default=300, validators=LEASE_SECONDS.validators(), help_text="How long /next holds an item."
    )
    prelabel_threshold = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Pre-labels less confident than this (calibrated) are shown as unsure, not suggested.",
    )
    instructions = models.TextField(
        blank=True,
        max_length=INSTRUCTIONS_MAX_LENGTH,
        help_text="Instructions for annotators, in Markdown; shown on the labeling page.",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    # Training coordination: one run at a time per project; requests coalesce.
    training_requested = models.BooleanField(default=False)
    training_requested_at = models.DateTimeField(null=True, blank=True, help_text="When the pending request was sent.")
    training_lock_until = models.DateTimeField(null=True, blank=True)
    review_scanned_at = models.DateTimeField(
        null=True, blank=True, help_text="When likely label errors were last looked for."
    )
    # The cold start: a spread-out first batch while there is no model (requested after imports;
    # the workers' reconciliation asks again for projects that never got one).
    cold_start_requested_at = models.DateTimeField(null=True, blank=True)
    cold_start_at = models.DateTimeField(null=True, blank=True, help_text="When the queue got its cold-start order.")
    import_batches = models.PositiveIntegerField(default=0, help_text="Imports so far: the last batch's number.")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    @property
    def multi_label(self) -> bool:
        """Whether the project's kind has several classes per image (the API's ``multi_label`` flag,
        and the ``ml`` library's switch to sigmoid outputs)."""
        return KINDS[self.kind].multi_label


class Membership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Manager"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=LABEL_CLASS_NAME_MAX_LENGTH, validators=[validate_label_class_name])
    hotkey = models.CharField(max_length=1, blank=True)
    index = models.PositiveSmallIntegerField(
        help_text="Orders the project's classes; a class's model output is its position in this order "
        "(selectors.class_order), as a deleted class leaves a gap."
    )

    class Meta:
        ordering = ["project", "index"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="labelclass_unique_name"),
            models.UniqueConstraint(fields=["project", "index"], name="labelclass_unique_index"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="labelclass_unique_hotkey"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ReviewStatus(models.TextChoices):
    NONE = "none", "Not flagged"
    FLAGGED = "flagged", "Flagged for review"
    REVIEWED = "reviewed", "Reviewed"
    AMBIGUOUS = "ambiguous", "Ambiguous"


class ReviewReason(models.TextChoices):
    LABEL_ISSUE = "label_issue", "Likely label error"
    DISAGREEMENT = "disagreement", "Annotators disagreed"
    MANUAL = "manual", "Sent to review by a manager"


class ReviewAction(models.TextChoices):
    KEEP = "keep", "Kept the label"
    CHANGE = "change", "Changed the label"
    AMBIGUOUS = "ambiguous", "Marked ambiguous"


def item_upload_to(instance: Item, filename: str) -> str:
    """Store files under a random name; the original name is kept in the row."""
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"projects/{instance.project_id}/{uuid.uuid4().hex}{suffix}"


class Item(models.Model):
    class Status(models.TextChoices):
        UNLABELED = "unlabeled", "Unlabeled"
        LABELED = "labeled", "Labeled"
        SKIPPED = "skipped", "Skipped"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    file = models.FileField(upload_to=item_upload_to, max_length=300)
    display = models.CharField(
        max_length=320, null=True, blank=True, help_text="The display rendition's name; blank: the file itself."
    )
    original_name = models.CharField(max_length=500)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)
    cache_row = models.IntegerField(null=True, blank=True, help_text="Row in the project's decoded-array cache.")
    batch = models.PositiveIntegerField(
        null=True, blank=True, help_text="The project's import that brought the item: 1, 2, ... in import order."
    )
    n_boxes = models.PositiveIntegerField(null=True, blank=True, help_text="Box projects: the boxes of its answer.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNLABELED)
    # Every reference to a class is RESTRICT: a class that labels, pre-labels or reviews refer to is not
    # deleted (its answers would go, and the class indices would shift under the models), while a
    # deleted project still takes its classes and everything referring to them along.
    # The item's answer (the consensus of its annotations, or a review) is its ``consensus`` classes.
    labeled_at = models.DateTimeField(null=True, blank=True)
    n_annotations = models.PositiveSmallIntegerField(default=0, help_text="Active annotations by people.")
    agreement = models.FloatField(null=True, blank=True, help_text="Share of annotators agreeing with consensus.")

    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    lease_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_until = models.DateTimeField(null=True, blank=True)

    # The current model's pre-label for this item.
    pred_label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.RESTRICT, related_name="+")
    pred_confidence = models.FloatField(null=True, blank=True)
    pred_probs = models.JSONField(null=True, blank=True)
    pred_version = models.ForeignKey("ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.FloatField(null=True, blank=True, help_text="The strategy's score; higher = more worth labeling.")

    # Review of likely label errors: set by a scan (out-of-fold predictions ranked by cleanlab,
    # or annotators' disagreement) and by a manager's decision.
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.NONE)
    review_reason = models.CharField(max_length=16, choices=ReviewReason.choices, blank=True)
    review_score = models.FloatField(
        null=True,
        blank=True,
        help_text="Label quality from the last scan, 0..1; lower = more likely wrong (0: sent by a manager).",
    )
    # The scan's suggestion is the item's ``suggested`` classes (present when review_confidence is); the
    # answer a manager decided on, its ``reviewed`` classes (a different answer may be flagged again).
    review_confidence = models.FloatField(
        null=True, blank=True, help_text="The model's probability of its suggestion; empty: no suggestion."
    )
    review_action = models.CharField(max_length=16, choices=ReviewAction.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="item_unique_content")]
        indexes = [
            models.Index(fields=["project", "status", "-priority", "id"], name="item_queue"),
            models.Index(fields=["project", "status", "labeled_at"], name="item_status"),
            models.Index(fields=["project", "review_status", "review_score", "id"], name="item_review"),
            # The data browser's sorts and the import-batch filter.
            models.Index(fields=["project", "score", "id"], name="item_score"),
            models.Index(fields=["project", "pred_confidence", "id"], name="item_confidence"),
            models.Index(fields=["project", "batch", "id"], name="item_batch"),
            models.Index(fields=["project", "n_boxes", "id"], name="item_n_boxes"),
        ]

    def __str__(self) -> str:
        return self.original_name


class Annotation(models.Model):
    """One person's (or an import's) label for an item. Rows are kept as history: a changed
    or undone label deactivates the row instead of deleting it."""

    class Source(models.TextChoices):
        HUMAN = "human", "Human"
        IMPORT = "import", "Import"
        REVIEW = "review", "Review"

    class Prelabel(models.TextChoices):
        ACCEPTED = "accepted", "Accepted the pre-label"
        CORRECTED = "corrected", "Corrected the pre-label"
        NONE = "none", "No pre-label"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotations"
    )
    # The answer: the annotation's classes (``AnnotationClass``), one on single-label projects.
    classes = models.ManyToManyField(LabelClass, through="AnnotationClass", related_name="annotations")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    prelabel = models.CharField(max_length=16, choices=Prelabel.choices, default=Prelabel.NONE)
    client_token = models.CharField(max_length=100, null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_token"],
                condition=Q(client_token__isnull=False),
                name="annotation_unique_client_token",
            ),
            models.UniqueConstraint(
                fields=["item", "user"],
                condition=Q(active=True, user__isnull=False),
                name="annotation_one_active_per_user",
            ),
        ]
        # An item's active annotations, newest first: the export's "who labeled it last" is one probe,
        # whatever the planner's statistics say (a fresh import has none until ANALYZE).
        indexes = [models.Index(fields=["item", "-id"], condition=Q(active=True), name="annotation_item_latest")]

    def __str__(self) -> str:
        return f"annotation {self.id} of item {self.item_id}"


class AnswerRole(models.TextChoices):
    """Which of an item's answers an ``ItemClass`` row belongs to."""

    CONSENSUS = "consensus", "The item's label (its annotations' consensus, or a review)"
    REVIEWED = "reviewed", "The label a manager reviewed"
    SUGGESTED = "suggested", "The review scan's suggestion"


# An answer is a set of classes, stored as one row per class: an annotation's in ``AnnotationClass``,
# an item's (consensus, reviewed, suggested) in ``ItemClass``. Single-label answers are sets of one,
# multi-label ones may be empty. Rows refer to classes, never to names, so renames keep every answer.
# Every reference to a class is RESTRICT: a class that answers refer to is not deleted.


class AnnotationClass(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="answer_classes")
    label_class = models.ForeignKey(LabelClass, on_delete=models.RESTRICT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotation", "label_class"], name="annotationclass_unique")]
        indexes = [models.Index(fields=["label_class"], name="annotationclass_class")]


class ItemClass(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="answer_classes")
    role = models.CharField(max_length=16, choices=AnswerRole.choices, default=AnswerRole.CONSENSUS)
    label_class = models.ForeignKey(LabelClass, on_delete=models.RESTRICT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "role", "label_class"], name="itemclass_unique")]
        # "The items labeled c" is one index range.
        indexes = [models.Index(fields=["label_class", "role", "item"], name="itemclass_class")]


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    strategy = models.CharField(max_length=32, choices=QueryStrategy.choices)
    model_family = models.CharField(max_length=16, choices=ModelFamily.choices, default=ModelFamily.CNN)
    progress = models.FloatField(default=0.0, help_text="Fraction of the run done, 0..1.")
    n_labels = models.PositiveIntegerField(help_text="Labeled items when training began.")
    metrics = models.JSONField(default=dict, blank=True)
    weights = models.CharField(max_length=500, blank=True, help_text="Path of the weights under DATA_DIR.")
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="modelversion_unique_number")]
        indexes = [models.Index(fields=["project", "status", "-number"], name="modelversion_latest")]

    def __str__(self) -> str:
        return f"{self.project} v{self.number} ({self.status})"


class Job(models.Model):
    """A background import into a project or export of it, run by a Celery worker (``annotator.tasks``)."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="Fraction of the job done, 0..1.")
    params = models.JSONField(default=dict, blank=True, help_text="What was asked: folder, manifest, format, ...")
    summary = models.JSONField(default=dict, blank=True, help_text="The outcome: counts, rejected files.")
    file = models.CharField(max_length=500, blank=True, help_text="Export result, relative to DATA_DIR.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="job_project_recent")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} of {self.project} ({self.status})"
