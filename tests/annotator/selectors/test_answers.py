"""Stored answers read back and written: one row per class, read in class order, for many items in
one query; an empty answer is no rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.models import AnnotationClass, ItemClass
from annotator.selectors.answers import annotation_answer_names, item_answer_names, item_answers
from annotator.services.annotations import annotation_create
from annotator.services.answers import item_answers_store
from tests.annotator.helpers import make_items
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


def test_answers_are_sets_of_classes_read_in_class_order_in_one_query():
    user = make_user("ann")
    project = make_project(user, labels=["cat", "dog", "outdoor"], kind="multi_label")
    first, second, third = make_items(project, 3)
    cat, dog, outdoor = project.classes.order_by("index")
    annotation, _ = annotation_create(item=first, user=user, labels=["outdoor", "cat"])
    annotation_create(item=second, user=user, labels=[])
    # One row per class, for the annotation and for the item's consensus; none for the empty answer
    assert sorted(AnnotationClass.objects.values_list("label_class_id", flat=True)) == sorted([cat.id, outdoor.id])
    assert ItemClass.objects.filter(item=second).count() == 0
    with CaptureQueriesContext(connection) as queries:
        answers = item_answers(item_ids=[first.id, second.id, third.id])
    assert len(queries) == 1 and answers == {first.id: (cat.id, outdoor.id)}
    assert item_answer_names(item_ids=[first.id, second.id]) == {first.id: ["cat", "outdoor"]}
    assert annotation_answer_names(annotation_ids=[annotation.id]) == {annotation.id: ["cat", "outdoor"]}
    # A store replaces a role's answer of each item given, and leaves the other roles alone
    item_answers_store(answers={first.id: (dog.id,), third.id: ()}, role="suggested")
    assert item_answers(item_ids=[first.id], role="suggested") == {first.id: (dog.id,)}
    assert item_answers(item_ids=[first.id]) == {first.id: (cat.id, outdoor.id)}
    item_answers_store(answers={first.id: ()}, role="suggested")
    assert item_answers(project_id=project.id, role="suggested") == {}
