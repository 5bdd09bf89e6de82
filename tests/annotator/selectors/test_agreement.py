"""Agreement on overlapped items: Fleiss' kappa and each annotator's agreement with consensus,
against figures computed by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import Client

from annotator.models import Item
from annotator.selectors.agreement import agreement_stats, fleiss_kappa
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.members import membership_add
from tests.factories import make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971)-style table: 4 items, 3 raters, 3 classes
    counts = np.array([[3, 0, 0], [0, 3, 0], [1, 2, 0], [0, 1, 2]])
    # P_i = (sum n_ij^2 - 3) / 6 → 1, 1, 1/3, 1/3; mean 2/3. p_j = 4/12, 6/12, 2/12 → P_e = 56/144
    expected = (2 / 3 - 56 / 144) / (1 - 56 / 144)
    assert fleiss_kappa(counts) == pytest.approx(expected)
    assert fleiss_kappa(np.array([[2, 0], [0, 2]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[1, 1], [1, 0]])) is None  # unequal raters


def test_agreement_stats_and_the_dashboard_panel():
    # Given three annotators labeling three items, three labels each
    manager = make_user("manager")
    project = make_project(manager, labels=["cat", "dog"], labels_per_item=3)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(60 + i))) for i in range(3)], user=manager
    )
    people = [make_user("ann"), make_user("ben"), make_user("cy")]
    for person in people:
        membership_add(project=project, user=person)
    answers = [["cat", "cat", "cat"], ["cat", "cat", "dog"], ["dog", "dog", "cat"]]
    items = list(Item.objects.filter(project=project).order_by("id"))
    for item, labels in zip(items, answers, strict=True):
        for person, label in zip(people, labels, strict=True):
            fresh = Item.objects.select_related("project").get(id=item.id)
            annotation_create(item=fresh, user=person, label=label)

    stats = agreement_stats(project=project)

    # Then: consensus cat, cat, dog; agreement 1, 2/3, 2/3
    assert stats["items"] == 3
    assert stats["mean_agreement"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # P_i = 1, 1/3, 1/3 → 5/9; p = (6/9, 3/9) → P_e = 45/81 = 5/9: no better than chance
    assert stats["fleiss_kappa"] == pytest.approx(0.0, abs=1e-12)
    by_name = {a["username"]: a for a in stats["annotators"]}
    assert by_name["ann"]["agreement_with_consensus"] == pytest.approx(1.0)
    assert by_name["ben"]["agreement_with_consensus"] == pytest.approx(1.0)
    assert by_name["cy"]["agreement_with_consensus"] == pytest.approx(1 / 3)

    client = Client()
    client.force_login(manager)
    page = client.get(f"/projects/{project.id}/").content.decode()
    assert "Fleiss" in page and 'id="fleiss-kappa"' in page
    api = client.get(f"/api/projects/{project.id}/agreement/")
    assert api.status_code == 200 and api.json()["items"] == 3
    annotator = Client()
    annotator.force_login(people[0])
    assert annotator.get(f"/api/projects/{project.id}/agreement/").status_code == 403
