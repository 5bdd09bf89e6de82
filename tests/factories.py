"""Small factories for tests: users, projects and images made on the fly."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from PIL import Image

from annotator.models import Project
from annotator.selectors.projects import PROJECT_CREATE_PERMISSION
from annotator.services.projects import project_create


def make_user(username: str, *, superuser: bool = False, can_create_projects: bool = False):
    """A user whose password is ``pw-<username>``; ``can_create_projects`` grants the permission an
    admin gives to people who create projects (superusers have it anyway)."""
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username=username, password="pw-" + username)
    user = User.objects.create_user(username=username, password="pw-" + username)
    if can_create_projects:
        app_label, codename = PROJECT_CREATE_PERMISSION.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        user = User.objects.get(id=user.id)  # a fresh object: permissions are cached per object
    return user


def make_project(user, *, labels: Sequence[str] = ("cat", "dog"), **kwargs) -> Project:
    return project_create(name=kwargs.pop("name", "Pets"), labels=list(labels), user=user, **kwargs)


def png_bytes(seed: int, size: int = 24, mode: str = "RGB") -> bytes:
    """A small distinct PNG image (different seeds give different pixels)."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(size, size, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def digits_pngs(n: int) -> tuple[list[bytes], list[int]]:
    """The first ``n`` scikit-learn digits as 64×64 PNG files, and their true labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    files = []
    for image in digits.images[:n]:
        pixels = (255 - image * (255 / 16)).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((64, 64), Image.Resampling.BILINEAR).save(buffer, format="PNG")
        files.append(buffer.getvalue())
    return files, [int(t) for t in digits.target[:n]]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def answer_names(item, role: str = "consensus") -> list[str] | None:
    """The class names of an item's stored answer (``role``: consensus, reviewed, suggested), in class
    order; ``None`` for a single-label answer that is not there (as an unset label used to read)."""
    from annotator.models import ItemClass

    item_id = item if isinstance(item, int) else item.id
    rows = ItemClass.objects.filter(item_id=item_id, role=role).order_by("label_class__index")
    return list(rows.values_list("label_class__name", flat=True))


def label_of(item, role: str = "consensus") -> str | None:
    """The one class of a single-label item's answer, or ``None``."""
    names = answer_names(item, role)
    return names[0] if names else None


def annotation_names(annotation) -> list[str]:
    """The class names of an annotation's answer, in class order."""
    return [c.name for c in annotation.classes.order_by("index")]


def annotation_label(annotation) -> str | None:
    names = annotation_names(annotation)
    return names[0] if names else None


def store_answer(item, names: Sequence[str], role: str = "consensus") -> None:
    """Write an item's answer directly (a test's fixture, as a scan or an import would leave it)."""
    from annotator.models import ItemClass, LabelClass

    ids = dict(LabelClass.objects.filter(project_id=item.project_id).values_list("name", "id"))
    ItemClass.objects.filter(item_id=item.id, role=role).delete()
    ItemClass.objects.bulk_create(ItemClass(item_id=item.id, role=role, label_class_id=ids[n]) for n in names)
