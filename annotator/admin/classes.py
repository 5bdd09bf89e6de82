"""Label classes: added, renamed and deleted only through the services that keep stored answers,
pre-labels and class indices valid; the delete page says what still refers to a class."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from annotator.class_names import label_class_name_clean
from annotator.models import LabelClass
from annotator.selectors.classes import label_class_uses
from annotator.services.classes import label_class_add, label_class_check, label_class_update
from annotator.services.errors import ServiceError


class LabelClassForm(forms.ModelForm):
    """A class's name and hotkey, checked as on every other path (``label_class_check``)."""

    class Meta:
        model = LabelClass
        fields = ["project", "name", "hotkey"]

    def clean_name(self) -> str:
        return label_class_name_clean(self.cleaned_data["name"])  # its ValidationError is the field's error

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        editing = self.instance.pk is not None
        project = self.instance.project if editing else cleaned.get("project")
        if project is not None and "name" in cleaned:
            try:
                cleaned["name"], hotkey = label_class_check(
                    project=project,
                    name=cleaned["name"],
                    hotkey=cleaned.get("hotkey") or None,
                    label_class=self.instance if editing else None,
                )
            except ServiceError as exc:
                raise forms.ValidationError(str(exc)) from exc
            if editing:
                cleaned["hotkey"] = hotkey
        return cleaned


#: How the delete page words what refers to a class, one and many (``label_class_uses``).
CLASS_USES = {
    "labeled": ("item labeled with it", "items labeled with it"),
    "annotations": ("annotation (history included)", "annotations (history included)"),
    "predicted": ("pre-label", "pre-labels"),
    "reviewed": ("review decision or suggestion", "review decisions or suggestions"),
}


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    """Classes are appended (the next index), renamed with every stored answer that names them, and
    deleted only while nothing refers to them: all through the services."""

    form = LabelClassForm
    list_display = ["name", "project", "index", "hotkey"]
    list_filter = ["project"]
    list_select_related = ["project"]
    search_fields = ["name", "project__name"]
    autocomplete_fields = ["project"]

    def get_readonly_fields(self, request: HttpRequest, obj: LabelClass | None = None) -> list[str]:
        """The index is given (the next one), and with the project fixed once the class exists."""
        return ["project", "index"] if obj is not None else ["index"]

    def save_model(self, request: HttpRequest, obj: LabelClass, form: forms.ModelForm, change: bool) -> None:
        if change:
            data = form.cleaned_data
            saved = label_class_update(label_class=obj, name=data["name"], hotkey=data.get("hotkey", ""))
        else:
            saved = label_class_add(project=obj.project, name=obj.name, hotkey=obj.hotkey or None)
        obj.pk, obj.index, obj.name, obj.hotkey = saved.pk, saved.index, saved.name, saved.hotkey

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict, set, list[str]]:
        """A class that answers, pre-labels or reviews refer to is not deleted (the answers would go,
        and the models' outputs would shift): the delete page says what refers to it instead."""
        refused = []
        for label_class in objs:
            uses = label_class_uses(label_class=label_class)
            if uses:
                said = ", ".join(f"{n} {CLASS_USES[kind][n != 1]}" for kind, n in uses.items())
                refused.append(f"{label_class.project} / {label_class}: {said} (a class can be renamed instead)")
        if refused:
            return [], {}, set(), refused
        return super().get_deleted_objects(objs, request)
