"""``annotator/services/projects.py``: creating a project, its classes and their hotkeys."""

from __future__ import annotations

import pytest

from annotator.models import Project
from annotator.services.errors import ServiceError
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_project_create_assigns_hotkeys_in_order(user):
    project = make_project(user, labels=["cat", "dog", {"name": "bird", "hotkey": "b"}])
    classes = list(project.classes.order_by("index").values_list("name", "hotkey", "index"))
    assert classes == [("cat", "1", 0), ("dog", "2", 1), ("bird", "b", 2)]
    assert project.memberships.get().role == "manager"


def test_project_create_hotkeys_skip_reserved_letters(user):
    project = make_project(user, labels=[f"c{i}" for i in range(30)])
    hotkeys = list(project.classes.order_by("index").values_list("hotkey", flat=True))
    assert hotkeys[:10] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "a"]
    assert "s" not in hotkeys and "z" not in hotkeys
    assert len(set(hotkeys)) == 30


@pytest.mark.parametrize(
    ("labels", "message"),
    [([], "at least one"), (["a", "a"], "twice"), (["a/b"], "slashes"), ([{"name": "x", "hotkey": "s"}], "Hotkey")],
)
def test_project_create_rejects_bad_labels(user, labels, message):
    with pytest.raises(ServiceError, match=message):
        make_project(user, labels=labels)
    assert not Project.objects.exists()
