"""Label classes: the name and hotkey rules, adding a class, and renaming one (stored answers refer to
the class, so they follow). Classes are only ever appended, so the outputs of earlier model versions
keep their meaning."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Max

from annotator.class_names import label_class_name_clean, label_class_name_key
from annotator.kinds import KINDS
from annotator.models import LabelClass, Project, TaskKind
from annotator.selectors.classes import class_order
from annotator.services.errors import ServiceError

#: Keys the labeling page keeps for itself (skip, undo).
RESERVED_KEYS = {"s", "z"}
DEFAULT_HOTKEYS = [str(d) for d in range(1, 10)] + [c for c in string.ascii_lowercase if c not in RESERVED_KEYS]


def class_name_checked(value: Any) -> str:
    """A class name checked by the one rule (``models.label_class_name_clean``), as a service error."""
    try:
        return label_class_name_clean(value)
    except DjangoValidationError as exc:
        raise ServiceError(exc.messages[0]) from exc


def reserved_keys(kind: str) -> frozenset[str]:
    """The keys the labeling page of a project of ``kind`` keeps for itself."""
    return frozenset(RESERVED_KEYS) | KINDS[kind].reserved_keys


def hotkey_checked(value: Any, *, name: str, kind: str = TaskKind.CLASSIFICATION) -> str:
    """The hotkey of the class ``name``: one letter or digit, not a key the labeling page keeps."""
    hotkey = str(value).lower()
    reserved = reserved_keys(kind)
    if len(hotkey) != 1 or not hotkey.isalnum() or hotkey in reserved:
        *rest, last = sorted(reserved)
        kept = f"{', '.join(rest)} and {last}" if rest else last
        raise ServiceError(f"Hotkey {hotkey!r} for {name!r} must be one letter or digit other than {kept}.")
    return hotkey


def label_classes_checked(
    labels: Sequence[str | dict[str, Any]], *, kind: str = TaskKind.CLASSIFICATION
) -> list[tuple[str, str]]:
    """The ``(name, hotkey)`` of each class a new project is given (names, or ``{"name", "hotkey"}``),
    checked, in order; classes without a hotkey get the free ones in ``DEFAULT_HOTKEYS`` order."""
    if not labels:
        raise ServiceError("A project needs at least one class label.")
    names: list[str] = []
    keys: set[str] = set()
    wanted: list[str | None] = []
    for entry in labels:
        if isinstance(entry, dict):
            name, hotkey = class_name_checked(entry.get("name")), entry.get("hotkey")
        else:
            name, hotkey = class_name_checked(entry), None
        if label_class_name_key(name) in keys:
            raise ServiceError(f"Class label {name!r} is given twice (class names are unique whatever their case).")
        if hotkey is not None:
            hotkey = hotkey_checked(hotkey, name=name, kind=kind)
            if hotkey in wanted:
                raise ServiceError(f"Hotkey {hotkey!r} is given twice.")
        names.append(name)
        keys.add(label_class_name_key(name))
        wanted.append(hotkey)
    reserved = reserved_keys(kind)
    free = iter(k for k in DEFAULT_HOTKEYS if k not in wanted and k not in reserved)
    return [(name, key if key is not None else next(free, "")) for name, key in zip(names, wanted, strict=False)]


def project_class_names(*, project_id: int) -> list[str]:
    """The project's class names in class order."""
    return class_order(project_id=project_id).names


def label_class_check(
    *, project: Project, name: Any, hotkey: Any = None, label_class: LabelClass | None = None
) -> tuple[str, str]:
    """The name and hotkey that a new class of ``project`` gets, or that ``label_class`` changes to,
    checked against the project's other classes: the class name rule, names unique whatever their
    case, hotkeys one letter or digit used once. A new class without a hotkey gets a free one; a
    changed class without one has none. Raises ``ServiceError`` saying what is wrong."""
    others = LabelClass.objects.filter(project=project)
    if label_class is not None:
        others = others.exclude(id=label_class.id)
    existing = list(others.values_list("name", "hotkey"))
    name = class_name_checked(name)
    if label_class_name_key(name) in {label_class_name_key(n) for n, _ in existing}:
        raise ServiceError(f"The project already has a class {name!r} (class names are unique whatever their case).")
    used = {k for _, k in existing}
    if hotkey in (None, ""):
        reserved = reserved_keys(project.kind)
        free = (k for k in DEFAULT_HOTKEYS if k not in used and k not in reserved)
        return name, "" if label_class is not None else next(free, "")
    hotkey = hotkey_checked(hotkey, name=name, kind=project.kind)
    if hotkey in used:
        raise ServiceError(f"Hotkey {hotkey!r} is already used by another class.")
    return name, hotkey


def label_class_add(*, project: Project, name: str, hotkey: str | None = None) -> LabelClass:
    """Append a class to a project. Classes are only ever appended (after the highest index, so a
    deleted class's gap is never filled), so the outputs of model versions trained before keep their
    meaning; the next retrain learns the new class."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=project.id).first()
        name, hotkey = label_class_check(project=project, name=name, hotkey=hotkey)
        last = LabelClass.objects.filter(project=project).aggregate(last=Max("index"))["last"]
        index = 0 if last is None else last + 1
        return LabelClass.objects.create(project=project, name=name, hotkey=hotkey, index=index)


def label_class_update(*, label_class: LabelClass, name: str | None = None, hotkey: str | None = None) -> LabelClass:
    """Rename a class or change its hotkey (``None``: unchanged; an empty hotkey: none). Stored
    answers refer to the class, not to its name, so every one of them follows a rename. The class
    keeps its index, so models trained before keep their meaning."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(id=label_class.project_id).first()
        current = LabelClass.objects.select_related("project").get(id=label_class.id)
        new_name, new_key = label_class_check(
            project=current.project,
            name=current.name if name is None else name,
            hotkey=current.hotkey if hotkey is None else hotkey,
            label_class=current,
        )
        LabelClass.objects.filter(id=current.id).update(name=new_name, hotkey=new_key)
        current.name, current.hotkey = new_name, new_key
    return current
