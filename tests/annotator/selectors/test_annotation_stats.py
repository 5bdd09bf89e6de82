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
