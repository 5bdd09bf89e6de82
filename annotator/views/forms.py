"""The pages' forms: a new project, its settings, a member."""

from __future__ import annotations

from typing import Any

from django import forms

from annotator.models import (
    DEFAULT_STRATEGY,
    INPUT_SIZE,
    INSTRUCTIONS_MAX_LENGTH,
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
from annotator.services.classes import label_classes_checked
from annotator.services.errors import ServiceError


def range_field(bounds: Range, **kwargs: Any) -> forms.IntegerField:
    """An integer field with the bounds and the message of a setting's one range (``models.Range``)."""
    return forms.IntegerField(
        min_value=bounds.low, max_value=bounds.high, error_messages=bounds.error_messages, **kwargs
    )


def labels_parsed(text: str) -> list[str | dict[str, str]]:
    """The classes written as ``cat:c, dog:d, bird``: names in order, separated by commas, each with
    its hotkey after a colon if it has one (after the last colon: a name may hold colons, and ends
    with a bare ``:`` when it has no key). The names and keys are checked by the services' rules."""
    labels: list[str | dict[str, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, colon, key = part.rpartition(":")
        if not colon:
            labels.append(part.strip())
        elif key.strip():
            labels.append({"name": name.strip(), "hotkey": key.strip()})
        else:
            labels.append(name.strip())
    return labels


def instructions_field(**kwargs: Any) -> forms.CharField:
    """The instructions for annotators: Markdown in a text area."""
    return forms.CharField(
        max_length=INSTRUCTIONS_MAX_LENGTH,
        required=False,
        label="Instructions for annotators",
        help_text="Markdown: # headings, - lists, **bold**, [links](https://…), `code`; no HTML. Shown on the "
        "labeling page on each annotator's first visit (and again when changed), and behind the ! key.",
        widget=forms.Textarea(attrs={"rows": 5}),
        **kwargs,
    )


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    labels = forms.CharField(
        max_length=5000,
        label="Classes",
        help_text="Class names in order, separated by commas, each with its key after a colon if you choose "
        "one: cat:c, dog:d, bird. Keys are one letter or digit other than s and z (and a, n, x on box projects); "
        "classes without one get "
        "1–9, then letters.",
        widget=forms.TextInput(attrs={"placeholder": "cat:c, dog:d, bird"}),
    )
    kind = forms.ChoiceField(
        choices=TaskKind.choices,
        required=False,
        initial=TaskKind.CLASSIFICATION,
        label="Task",
        help_text="One class per image, any number of classes per image (none is an answer too), or boxes "
        "around the objects in each image (nothing there is an answer too).",
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
    instructions = instructions_field()

    def clean_labels(self) -> list[str | dict[str, str]]:
        """The classes as the API takes them, checked by the same rule (``label_classes_checked``)."""
        labels = labels_parsed(self.cleaned_data["labels"])
        try:
            label_classes_checked(labels)
        except ServiceError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return labels


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
    strategy = forms.ChoiceField(
        choices=QueryStrategy.choices, help_text="How the model picks what to label next; the next retrain uses it."
    )
    allow_flips = forms.BooleanField(
        required=False, help_text="Mirror images in training (not for text or digits); the next retrain uses it."
    )
    instructions = instructions_field()


def settings_initial(project: Project) -> dict[str, Any]:
    """The settings card's fields as the project has them."""
    return {name: getattr(project, name) for name in ProjectSettingsForm.base_fields}


class MemberForm(forms.Form):
    """A member to add: a username, or the email address of an existing user (suggested as one types:
    static/js/members.js fills the ``member-suggestions`` list)."""

    username = forms.CharField(
        max_length=254,
        widget=forms.TextInput(attrs={"list": "member-suggestions", "autocomplete": "off", "placeholder": "name"}),
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class InviteForm(forms.Form):
    """Someone to invite by email address (their account is made when there is none)."""

    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"placeholder": "name@example.com"}))
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)
