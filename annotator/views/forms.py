"""The pages' forms: a new project, its settings, a member."""

from __future__ import annotations

from typing import Any

from django import forms

from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    LABELS_PER_ITEM,
    LEASE_SECONDS,
    RETRAIN_EVERY,
    Membership,
    ModelFamily,
    Project,
    QueryStrategy,
    Range,
    TaskKind,
)


def range_field(bounds: Range, **kwargs: Any) -> forms.IntegerField:
    """An integer field with the bounds and the message of a setting's one range (``models.Range``)."""
    return forms.IntegerField(
        min_value=bounds.low, max_value=bounds.high, error_messages=bounds.error_messages, **kwargs
    )


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    labels = forms.CharField(
        max_length=5000, help_text="Class names in order, separated by commas.", widget=forms.TextInput
    )
    kind = forms.ChoiceField(
        choices=TaskKind.choices,
        required=False,
        initial=TaskKind.CLASSIFICATION,
        label="Task",
        help_text="One class per image, or any number of classes per image (none is an answer too).",
    )
    model_family = forms.ChoiceField(
        choices=ModelFamily.choices,
        required=False,
        initial=ModelFamily.CNN,
        label="Model",
        help_text="Small CNN: small, simple images (digits, icons, cells); it learns from scratch. "
        "Pretrained backbone: photos and anything natural; an ImageNet MobileNetV2 computes features "
        "once and a small head learns fast. Your TorchScript backbone: a .pt file on the server.",
    )
    backbone_path = forms.CharField(
        max_length=500, required=False, help_text="For your TorchScript backbone: its file on the server."
    )
    strategy = forms.ChoiceField(choices=QueryStrategy.choices, initial=DEFAULT_STRATEGY)
    retrain_every = range_field(RETRAIN_EVERY, initial=10, help_text="Retrain after this many new labels.")
    input_size = range_field(INPUT_SIZE, initial=32, help_text="Side of the square model input, pixels.")
    allow_flips = forms.BooleanField(required=False, help_text="Mirror images in training (not for text or digits).")
    labels_per_item = range_field(
        LABELS_PER_ITEM, initial=1, required=False, help_text="Different annotators who label each item."
    )
    show_prelabels = forms.BooleanField(
        required=False, initial=True, help_text="Show annotators the model's pre-labels."
    )
    lease_seconds = range_field(
        LEASE_SECONDS, initial=300, required=False, help_text="How long an annotator holds an item."
    )


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Left empty: the name stays.")
    show_prelabels = forms.BooleanField(required=False, help_text="Show the model's pre-labels to annotators.")
    prelabel_threshold = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        label="Unsure below",
        help_text="Pre-labels less confident than this (0..1) are shown as unsure, not suggested; empty: unchanged.",
    )
    labels_per_item = range_field(LABELS_PER_ITEM, help_text="Different annotators who label each item.")
    lease_seconds = range_field(LEASE_SECONDS, help_text="How long /next holds an item.")
    retrain_every = range_field(RETRAIN_EVERY, help_text="Retrain after this many new labels.")
    strategy = forms.ChoiceField(choices=QueryStrategy.choices)


def settings_initial(project: Project) -> dict[str, Any]:
    fields = [
        "name",
        "show_prelabels",
        "prelabel_threshold",
        "labels_per_item",
        "lease_seconds",
        "retrain_every",
        "strategy",
    ]
    return {name: getattr(project, name) for name in fields}


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)
