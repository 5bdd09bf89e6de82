"""``annotator/selectors/dashboard.py``: ``annotation_stats`` splits acceptance and time by pre-label outcome."""

from __future__ import annotations

import pytest

from annotator.models import Item
from annotator.selectors.dashboard import annotation_stats
from tests.annotator.helpers import label, make_items
from tests.factories import make_project

pytestmark = pytest.mark.django_db


def test_stats_split_acceptance_and_time_by_prelabel(user):
    project = make_project(user)
    items = make_items(project, 5)
    cat = project.classes.get(name="cat")
    Item.objects.filter(id__in=[i.id for i in items[:3]]).update(pred_label=cat)
    label(items[0], user, "cat", duration_ms=1000)
    label(items[1], user, "cat", duration_ms=3000)
    label(items[2], user, "dog", duration_ms=2000)
    label(items[3], user, "dog", duration_ms=4000)
    label(items[4], user, "dog", duration_ms=6000)
    stats = annotation_stats(project=project)
    assert (stats["accepted"], stats["corrected"], stats["none"]) == (2, 1, 2)
    assert stats["acceptance_rate"] == pytest.approx(2 / 3)
    assert stats["median_s_with_prelabel"] == 2.0
    assert stats["median_s_without_prelabel"] == 5.0


def test_stats_leave_out_undone_and_untimed_labels_and_take_a_bounded_number_of_queries(
    user, django_assert_max_num_queries
):
    # Given labels with and without a pre-label, one without a duration, and one undone later
    project = make_project(user)
    items = make_items(project, 6)
    cat = project.classes.get(name="cat")
    Item.objects.filter(id__in=[i.id for i in items[:2]]).update(pred_label=cat)
    label(items[0], user, "cat", duration_ms=1000)
    label(items[1], user, "cat", duration_ms=None)
    for item, ms in zip(items[2:5], [5000, 1000, 3000], strict=True):
        label(item, user, "dog", duration_ms=ms)
    label(items[5], user, "dog", duration_ms=90_000)
    items[5].annotations.update(active=False)
    # When the figures are read (the project page polls them), in at most three queries
    with django_assert_max_num_queries(3):
        stats = annotation_stats(project=project)
    # Then the undone label is not counted, and the median leaves out the label without a time
    assert (stats["n_labels"], stats["accepted"], stats["none"]) == (5, 2, 3)
    assert stats["median_s_with_prelabel"] == 1.0
    assert stats["median_s_without_prelabel"] == 3.0
