"""Projects: creating one with its ordered classes, and changing how it is labeled (its settings).
Each range a setting may take is defined once, in ``annotator.models``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from annotator import paths
from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    INSTRUCTIONS_MAX_LENGTH,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    LabelClass,
    Membership,
    ModelFamily,
    Project,
    QueryStrategy,
    TaskKind,
)
from annotator.services.classes import label_classes_checked
from annotator.services.errors import ServiceError


def _kind_resolved(kind: str | None, multi_label: bool | None) -> str:
    """The task kind asked for by ``kind`` and its alias ``multi_label``."""
    if kind is not None and kind not in TaskKind.values:
        raise ServiceError(f"Unknown kind {kind!r}; valid kinds: {', '.join(TaskKind.values)}.")
    alias = None if multi_label is None else TaskKind.MULTI_LABEL if multi_label else TaskKind.CLASSIFICATION
    if kind is not None and alias is not None and kind != alias:
        raise ServiceError(f"multi_label={str(multi_label).lower()} contradicts kind {kind!r}; send one of them.")
    return kind or alias or TaskKind.CLASSIFICATION


@transaction.atomic
def project_create(
    *,
    name: str,
    labels: Sequence[str | dict[str, Any]],
    user: User | None,
    retrain_every: int = 10,
    strategy: str = DEFAULT_STRATEGY,
    input_size: int = 32,
    model_family: str = ModelFamily.CNN,
    backbone_path: str = "",
    allow_flips: bool = False,
    kind: str | None = None,
    multi_label: bool | None = None,
    labels_per_item: int = 1,
    show_prelabels: bool = True,
    lease_seconds: int | None = None,
    prelabel_threshold: float = 0.5,
    instructions: str = "",
) -> Project:
    """Create a project with its ordered classes; the creator becomes its manager.

    ``labels``: class names, or ``{"name", "hotkey"}`` (``services.classes.label_classes_checked``).
    ``kind``: the task kind (``TaskKind``, default ``classification``); ``multi_label=True`` is the
    older way to ask for the ``multi_label`` kind, and may be given with it only when they agree.
    ``instructions``: Markdown for the annotators."""
    name = name.strip()
    if not name:
        raise ServiceError("A project needs a name.")
    if strategy not in QueryStrategy.values:
        raise ServiceError(f"Unknown strategy {strategy!r}; valid: {', '.join(QueryStrategy.values)}.")
    if retrain_every not in RETRAIN_EVERY:
        raise ServiceError(RETRAIN_EVERY.message)
    if input_size not in INPUT_SIZE:
        raise ServiceError(INPUT_SIZE.message)
    if model_family not in ModelFamily.values:
        raise ServiceError(f"Unknown model family {model_family!r}; valid: {', '.join(ModelFamily.values)}.")
    backbone_path = backbone_path.strip()
    if model_family == ModelFamily.TORCHSCRIPT:
        if not backbone_path:
            raise ServiceError("The torchscript family needs backbone_path, a TorchScript file on the server.")
        if not paths.is_allowed_backbone(backbone_path):
            raise ServiceError("backbone_path must be an existing .pt file under DATA_DIR/backbones or IMPORT_ROOTS.")
        backbone_path = str(paths.backbone_file(backbone_path))
    elif backbone_path:
        raise ServiceError("backbone_path is only used by the torchscript family.")
    if labels_per_item not in LABELS_PER_ITEM:
        raise ServiceError(LABELS_PER_ITEM.message)
    lease_seconds = lease_seconds or settings.LEASE_SECONDS
    if lease_seconds not in LEASE_SECONDS:
        raise ServiceError(LEASE_SECONDS.message)
    _check_prelabel_threshold(prelabel_threshold)
    instructions = _instructions_checked(instructions)
    kind = _kind_resolved(kind, multi_label)
    pairs = label_classes_checked(labels, kind=kind)
    if kind == TaskKind.MULTI_LABEL and len(pairs) < 2:
        raise ServiceError("A multi-label project needs at least two classes.")
    project = Project.objects.create(
        name=name,
        created_by=user,
        retrain_every=retrain_every,
        strategy=strategy,
        input_size=input_size,
        model_family=model_family,
        backbone_path=backbone_path,
        allow_flips=allow_flips,
        kind=kind,
        labels_per_item=labels_per_item,
        show_prelabels=show_prelabels,
        lease_seconds=lease_seconds,
        prelabel_threshold=prelabel_threshold,
        instructions=instructions,
    )
    LabelClass.objects.bulk_create(
        LabelClass(project=project, name=label, hotkey=key, index=i) for i, (label, key) in enumerate(pairs)
    )
    if user is not None:
        Membership.objects.create(project=project, user=user, role=Membership.Role.MANAGER)
    return project


def _check_prelabel_threshold(value: float) -> None:
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ServiceError("prelabel_threshold must be between 0 and 1.")


def _instructions_checked(value: str) -> str:
    """The instructions for annotators, trimmed, at most ``INSTRUCTIONS_MAX_LENGTH`` characters."""
    if not isinstance(value, str):
        raise ServiceError("instructions must be text (Markdown).")
    value = value.strip()
    if len(value) > INSTRUCTIONS_MAX_LENGTH:
        raise ServiceError(f"The instructions are longer than {INSTRUCTIONS_MAX_LENGTH:,} characters.")
    return value


@transaction.atomic
def project_settings_update(
    *,
    project: Project,
    name: str | None = None,
    show_prelabels: bool | None = None,
    labels_per_item: int | None = None,
    lease_seconds: int | None = None,
    retrain_every: int | None = None,
    strategy: str | None = None,
    prelabel_threshold: float | None = None,
    allow_flips: bool | None = None,
    instructions: str | None = None,
) -> Project:
    """Change how a project is labeled: its name, pre-label visibility and the confidence below which
    a pre-label is shown as unsure, overlap, lease time, retraining (how often, which strategy, flips
    in augmentation: the next run uses them), the instructions for annotators (``""`` removes them).
    Settings given as ``None`` stay as they are. The task kind, model family and input size stay as
    the project was created: the stored labels, cache and model versions depend on them."""
    if name is not None:
        name = name.strip()
        if not name:
            raise ServiceError("A project needs a name.")
    if strategy is not None and strategy not in QueryStrategy.values:
        raise ServiceError(f"Unknown strategy {strategy!r}; valid: {', '.join(QueryStrategy.values)}.")
    if labels_per_item is not None and labels_per_item not in LABELS_PER_ITEM:
        raise ServiceError(LABELS_PER_ITEM.message)
    if lease_seconds is not None and lease_seconds not in LEASE_SECONDS:
        raise ServiceError(LEASE_SECONDS.message)
    if retrain_every is not None and retrain_every not in RETRAIN_EVERY:
        raise ServiceError(RETRAIN_EVERY.message)
    if prelabel_threshold is not None:
        _check_prelabel_threshold(prelabel_threshold)
    if instructions is not None:
        instructions = _instructions_checked(instructions)
    given = {
        "name": name,
        "show_prelabels": show_prelabels,
        "labels_per_item": labels_per_item,
        "lease_seconds": lease_seconds,
        "retrain_every": retrain_every,
        "strategy": strategy,
        "prelabel_threshold": prelabel_threshold,
        "allow_flips": allow_flips,
        "instructions": instructions,
    }
    changed = [setting for setting, value in given.items() if value is not None]
    for setting in changed:
        setattr(project, setting, given[setting])
    if changed:
        project.save(update_fields=changed)
    return project
