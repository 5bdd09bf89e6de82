"""The managers' dashboard: its selectors against hand-computed figures, its JSON API, and the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotator.models import Annotation, AnnotationClass, Item, LabelClass, Membership, ModelVersion
from annotator.selectors.classes import class_coverage, labels_per_class
from annotator.selectors.dashboard import annotator_throughput, project_dashboard
from annotator.selectors.model_versions import learning_curve
from annotator.selectors.projects import project_role
from annotator.services.members import membership_add
from annotator.templatetags.figures import accuracy_text
from annotator.views.charts import MATRIX_MAX_CLASSES, confusion_table, learning_curve_chart
from tests.factories import make_project, make_user, store_answer

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=1)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Five accounts per test: hash their passwords cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_items(project, n: int) -> list[Item]:
    """``n`` more unlabeled items without files (the dashboard never opens them); all the project's items."""
    start = Item.objects.filter(project=project).count()
    Item.objects.bulk_create(
        Item(
            project=project, file=f"x/{i}.png", original_name=f"{i}.png", width=8, height=8, sha256=f"{project.id}-{i}"
        )
        for i in range(start, start + n)
    )
    return list(Item.objects.filter(project=project).order_by("id"))


def label(item: Item, user, name: str, *, at_s: float, duration_ms: int | None, prelabel: str, **kwargs) -> None:
    """An annotation made ``at_s`` seconds after T0, and the item labeled with it."""
    label_class = LabelClass.objects.get(project=item.project, name=name)
    annotation = Annotation.objects.create(item=item, user=user, duration_ms=duration_ms, prelabel=prelabel, **kwargs)
    AnnotationClass.objects.create(annotation=annotation, label_class=label_class)
    Annotation.objects.filter(id=annotation.id).update(created=T0 + timedelta(seconds=at_s))
    Item.objects.filter(id=item.id).update(status=Item.Status.LABELED)
    store_answer(item, [name])


def version(project, number: int, status: str, n_labels: int, **fields) -> ModelVersion:
    return ModelVersion.objects.create(
        project=project, number=number, status=status, n_labels=n_labels, strategy=project.strategy, **fields
    )


@pytest.fixture
def team(user):
    """A project managed by alice, with annotators bob, carol and dave and a known history.

    bob: 3 labels at 0, 60, 120 s, 4 / 2 / 9 s each, pre-labels accepted, accepted, corrected.
    carol: 2 labels at 10 and 1810 s, 1 / 3 s, no pre-labels; one undone label (inactive) at 5000 s.
    dave: 1 label without a duration. An imported label (no person) on one more item.
    Versions: v1 ready (10 labels, 0.5 without an interval), v2 failed, v3 ready (30 labels, 0.8 in
    [0.7, 0.88] on 30 labels), v4 ready without an accuracy, v5 training at 25%.
    """
    project = make_project(user, labels=["cat", "dog", "bird"])
    bob, carol, dave = make_user("bob"), make_user("carol"), make_user("dave")
    for member in (bob, carol, dave):
        membership_add(project=project, user=member)
    items = make_items(project, 12)
    accepted, corrected, none = Annotation.Prelabel.ACCEPTED, Annotation.Prelabel.CORRECTED, Annotation.Prelabel.NONE
    label(items[0], bob, "cat", at_s=0, duration_ms=4000, prelabel=accepted)
    label(items[1], bob, "cat", at_s=60, duration_ms=2000, prelabel=accepted)
    label(items[2], bob, "dog", at_s=120, duration_ms=9000, prelabel=corrected)
    label(items[3], carol, "cat", at_s=10, duration_ms=1000, prelabel=none)
    label(items[4], carol, "cat", at_s=1810, duration_ms=3000, prelabel=none)
    label(items[5], carol, "dog", at_s=5000, duration_ms=50, prelabel=accepted, active=False)
    Item.objects.filter(id=items[5].id).update(status=Item.Status.UNLABELED)
    store_answer(items[5], [])
    label(items[6], dave, "dog", at_s=30, duration_ms=None, prelabel=none)
    label(items[7], None, "bird", at_s=40, duration_ms=None, prelabel=none, source=Annotation.Source.IMPORT)
    Item.objects.filter(id=items[8].id).update(status=Item.Status.SKIPPED)
    Item.objects.filter(id=items[9].id).update(lease_user=bob, lease_until=timezone.now() + timedelta(minutes=5))
    version(project, 1, ModelVersion.Status.READY, 10, metrics={"val_accuracy": 0.5})
    version(project, 2, ModelVersion.Status.FAILED, 20, error="boom: out of memory")
    interval = {"val_accuracy": 0.8, "val_accuracy_low": 0.7, "val_accuracy_high": 0.88, "val_n": 30}
    version(project, 3, ModelVersion.Status.READY, 30, metrics=interval)
    version(project, 4, ModelVersion.Status.READY, 35, metrics={})
    version(project, 5, ModelVersion.Status.TRAINING, 40, progress=0.25)
    return project, {"alice": user, "bob": bob, "carol": carol, "dave": dave}


def test_learning_curve_has_one_point_per_ready_version_with_an_accuracy(team):
    # Given the team's versions, when the curve is read
    project, _ = team
    curve = learning_curve(project=project)
    # Then failed, running and unmeasured versions are left out, and a version without an interval has None for it
    none = {"val_accuracy_low": None, "val_accuracy_high": None, "val_n": None}
    assert curve == [
        {"number": 1, "n_labels": 10, "val_accuracy": 0.5, **none},
        {
            "number": 3,
            "n_labels": 30,
            "val_accuracy": 0.8,
            "val_accuracy_low": 0.7,
            "val_accuracy_high": 0.88,
            "val_n": 30,
        },
    ]


def test_labels_per_class_counts_labeled_items_with_zeros(team):
    project, _ = team
    assert labels_per_class(project=project) == [
        {"name": "cat", "n": 4},
        {"name": "dog", "n": 2},
        {"name": "bird", "n": 1},
    ]


def test_labels_per_class_on_a_multi_label_project_counts_each_class_of_an_item(user):
    # Given a multi-label project: two items labeled {cat, outdoor} and {cat}, one unlabeled with a draft
    project = make_project(user, labels=["cat", "dog", "outdoor"], multi_label=True)
    first, second, third = make_items(project, 3)
    Item.objects.filter(id__in=[first.id, second.id]).update(status=Item.Status.LABELED)
    store_answer(first, ["cat", "outdoor"])
    store_answer(second, ["cat"])
    store_answer(third, ["dog"])
    # Then each labeled item counts once for each of its classes
    assert labels_per_class(project=project) == [
        {"name": "cat", "n": 2},
        {"name": "dog", "n": 0},
        {"name": "outdoor", "n": 1},
    ]


def label_counts(project, counts: dict[str, int]) -> None:
    """Label items of ``project`` (made here) with each class the given number of times."""
    items = iter(make_items(project, sum(counts.values()))[-sum(counts.values()) :])
    for name, n in counts.items():
        chosen = [next(items) for _ in range(n)]
        Item.objects.filter(id__in=[item.id for item in chosen]).update(status=Item.Status.LABELED)
        for item in chosen:
            store_answer(item, [name])


def test_class_coverage_names_classes_under_three_labels_once_there_are_ten_labels_per_class(user):
    # Given 3 classes and 29 labels (cat 26, dog 3, bird 0): under 10 per class, no warning yet
    project = make_project(user, labels=["cat", "dog", "bird"])
    label_counts(project, {"cat": 26, "dog": 3})
    assert class_coverage(project=project) == []
    # When one more dog makes 30 labels: bird (0) is under 3; dog (4) is not
    label_counts(project, {"dog": 1})
    assert class_coverage(project=project) == [{"name": "bird", "n": 0}]
    # And with two birds (still under 3), both the count and the name are reported
    label_counts(project, {"bird": 2})
    assert class_coverage(project=project) == [{"name": "bird", "n": 2}]
    label_counts(project, {"bird": 1})
    assert class_coverage(project=project) == []


def test_class_coverage_counts_labeled_items_on_a_multi_label_project(user):
    # Given a multi-label project with 2 classes and 20 labeled items: 19 {cat}, 1 {cat, dog}
    project = make_project(user, labels=["cat", "dog"], multi_label=True)
    items = make_items(project, 21)
    Item.objects.filter(id__in=[i.id for i in items[:20]]).update(status=Item.Status.LABELED)
    for item in items[:19]:
        store_answer(item, ["cat"])
    store_answer(items[19], ["cat", "dog"])
    store_answer(items[20], ["dog"])  # a draft on an unlabeled item: not counted
    # Then dog, with one label, is under-covered
    assert class_coverage(project=project) == [{"name": "dog", "n": 1}]


def test_annotator_throughput_matches_hand_computed_figures(team):
    # Given the team's labels, when throughput is read
    project, _ = team
    rows = {row["user"]: row for row in annotator_throughput(project=project)}
    # Then bob: 2 labels after the first in 120 s = 60 per hour; 2 of 3 pre-labels accepted; median 4 s
    assert [r["user"] for r in annotator_throughput(project=project)] == ["bob", "carol", "dave"]
    bob = rows["bob"]
    assert (bob["n_labels"], bob["accepted"], bob["corrected"]) == (3, 2, 1)
    assert bob["labels_per_hour"] == pytest.approx(60.0)
    assert bob["acceptance_rate"] == pytest.approx(2 / 3)
    assert bob["median_s"] == pytest.approx(4.0)
    # carol: her undone label does not count; 1 label in 1800 s = 2 per hour; no pre-label shown; median of 1 and 3 s
    carol = rows["carol"]
    assert carol["n_labels"] == 2
    assert carol["labels_per_hour"] == pytest.approx(2.0)
    assert carol["acceptance_rate"] is None
    assert carol["median_s"] == pytest.approx(2.0)
    assert carol["first"] == T0 + timedelta(seconds=10) and carol["last"] == T0 + timedelta(seconds=1810)
    # dave: one label, no duration: no rate and no median
    dave = rows["dave"]
    assert (dave["n_labels"], dave["labels_per_hour"], dave["median_s"]) == (1, None, None)


def test_project_dashboard_gathers_everything_in_a_bounded_number_of_queries(team, django_assert_max_num_queries):
    project, _ = team
    # When the dashboard is read (3 annotators: one median query each)
    with django_assert_max_num_queries(10 + 3):
        dashboard = project_dashboard(project=project)
    # Then the queue, the run in progress and the latest failure are there
    counts = dashboard["counts"]
    assert (counts["unlabeled"], counts["leased"], counts["labeled"], counts["skipped"]) == (4, 1, 7, 1)
    assert dashboard["training"]["number"] == 5 and dashboard["training"]["progress"] == 0.25
    assert dashboard["last_error"]["number"] == 2 and dashboard["last_error"]["error"] == "boom: out of memory"
    assert len(dashboard["learning_curve"]) == 2 and len(dashboard["annotators"]) == 3
    assert dashboard["under_covered"] == []  # 7 labels for 3 classes: too early to warn


def test_an_empty_project_has_an_empty_dashboard(user):
    project = make_project(user)
    dashboard = project_dashboard(project=project)
    assert dashboard["learning_curve"] == [] and dashboard["annotators"] == []
    assert dashboard["training"] is None and dashboard["last_error"] is None
    assert [c["n"] for c in dashboard["classes"]] == [0, 0] and dashboard["under_covered"] == []


def test_chart_puts_points_inside_the_plot():
    # Given two points, when the chart is laid out
    chart = learning_curve_chart(
        [{"number": 1, "n_labels": 0, "val_accuracy": 1.0}, {"number": 2, "n_labels": 50, "val_accuracy": 0.55}]
    )
    first, second = chart["dots"]
    # Then 0 labels sits on the left edge, accuracy 1.0 on the top edge, and the y axis starts at 0.5
    assert (first["x"], first["y"]) == (chart["left"], chart["top"])
    assert second["x"] == chart["right"] and second["y"] < chart["bottom"]
    assert chart["y_ticks"][0]["label"] == "0.5" and chart["x_ticks"][-1]["label"] == "50"


def test_chart_draws_each_interval_as_an_error_bar_inside_the_plot():
    # Given a point with an interval reaching 0.45, and one without an interval
    chart = learning_curve_chart(
        [
            {"number": 1, "n_labels": 10, "val_accuracy": 0.55, "val_accuracy_low": 0.45, "val_accuracy_high": 0.65},
            {"number": 2, "n_labels": 50, "val_accuracy": 0.9, "val_accuracy_low": None, "val_accuracy_high": None},
        ]
    )
    first, second = chart["dots"]
    # Then the y axis starts below the interval (0.4), and the bar runs from its high to its low end, capped
    assert chart["y_ticks"][0]["label"] == "0.4"
    plot = chart["bottom"] - chart["top"]
    top_y = round(chart["top"] + (1 - (0.65 - 0.4) / 0.6) * plot, 1)
    low_y = round(chart["top"] + (1 - (0.45 - 0.4) / 0.6) * plot, 1)
    x = first["x"]
    assert first["bar"] == f"M{x - 4:.1f},{top_y}h8M{x},{top_y}V{low_y}M{x - 4:.1f},{low_y}h8"
    assert chart["top"] < top_y < first["y"] < low_y < chart["bottom"]
    # And a point without an interval has no bar
    assert second["bar"] == ""


def test_accuracy_text_shows_the_interval_and_its_labels_or_just_the_value():
    interval = {"val_accuracy": 0.78, "val_accuracy_low": 0.69, "val_accuracy_high": 0.87, "val_n": 66}
    assert accuracy_text(interval) == "0.78 ± 0.09 (66 labels)"
    assert accuracy_text({**interval, "val_n": 1}) == "0.78 ± 0.09 (1 label)"
    assert accuracy_text({"val_accuracy": 0.5}) == "0.50"
    assert accuracy_text({**interval, "val_accuracy_high": None}) == "0.78"
    assert accuracy_text({}) == accuracy_text(None) == accuracy_text({"val_accuracy": "high"}) == "–"


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_dashboard_api_for_a_manager(team):
    project, people = team
    response = api_for(people["alice"]).get(f"/api/projects/{project.id}/dashboard/")
    assert response.status_code == 200
    body = response.json()
    assert body["training"]["progress"] == 0.25
    assert body["annotators"][0]["user"] == "bob" and body["annotators"][0]["labels_per_hour"] == pytest.approx(60.0)
    assert body["counts"]["leased"] == 1 and body["last_error"]["number"] == 2
    assert body["learning_curve"][1] == {
        "number": 3,
        "n_labels": 30,
        "val_accuracy": 0.8,
        "val_accuracy_low": 0.7,
        "val_accuracy_high": 0.88,
        "val_n": 30,
    }
    assert body["under_covered"] == []


def test_dashboard_api_and_page_name_the_classes_with_too_few_labels(user):
    # Given a project with 20 labels on 2 classes, all cats
    project = make_project(user)
    label_counts(project, {"cat": 20})
    # Then the API names dog with its count, and the page has the place its script writes the warning in
    # (the wording is checked in the browser: tests/browser/test_dashboard_page.py)
    assert api_for(user).get(f"/api/projects/{project.id}/dashboard/").json()["under_covered"] == [
        {"name": "dog", "n": 0}
    ]
    status, html = page_for(user, f"/projects/{project.id}/")
    assert status == 200
    assert '<p id="under-covered" class="warn" hidden></p>' in html


def test_dashboard_api_refuses_annotators_and_hides_from_strangers(team):
    project, people = team
    assert api_for(people["bob"]).get(f"/api/projects/{project.id}/dashboard/").status_code == 403
    stranger = make_user("eve")
    assert api_for(stranger).get(f"/api/projects/{project.id}/dashboard/").status_code == 404
    assert APIClient().get(f"/api/projects/{project.id}/dashboard/").status_code in (401, 403)


def page_for(user, path: str) -> tuple[int, str]:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    return response.status_code, response.content.decode()


def test_page_sends_a_manager_the_dashboard_frame_and_its_script(team):
    project, people = team
    status, html = page_for(people["alice"], f"/projects/{project.id}/")
    assert status == 200
    # The dashboard is drawn once, by its script from the API (tests/browser/test_dashboard_page.py): the page
    # sends the empty frame, with where to poll
    assert 'id="dashboard"' in html and "js/dashboard.js" in html and "js/figures.js" in html
    assert f'data-url="/api/projects/{project.id}/dashboard/"' in html and "?partial=learning-curve" in html
    assert '<tbody id="annotator-rows"></tbody>' in html and '<ul class="bars" id="class-bars"></ul>' in html
    assert '<p id="under-covered" class="warn" hidden></p>' in html and "Retrain now" in html
    assert "<td>bob</td><td>3</td>" not in html and "data-count=" not in html  # the counts: the live stats
    # The figures outside the dashboard are the server's, the accuracy in one format wherever it is shown
    assert "<td>30</td><td>0.80 ± 0.09 (30 labels)</td>" in html and "<td>10</td><td>0.50</td>" in html
    assert 'id="model-line" data-number="4">Model: <b>v4</b>, accuracy <b>–</b>' in html
    assert "boom: out of memory" in html  # v2's error, in the versions table


def test_page_hides_the_dashboard_from_an_annotator(team):
    project, people = team
    status, html = page_for(people["bob"], f"/projects/{project.id}/")
    assert status == 200 and "Start labeling" in html
    assert 'id="dashboard"' not in html and "learning-curve" not in html and "dashboard.js" not in html
    assert "Retrain now" not in html and "boom" not in html
    assert project_role(user=people["bob"], project=project) == Membership.Role.ANNOTATOR


def test_curve_partial_for_the_script(team):
    project, people = team
    status, html = page_for(people["alice"], f"/projects/{project.id}/?partial=learning-curve")
    assert status == 200 and html.lstrip().startswith('<svg id="learning-curve"')
    assert "<polyline" in html and html.count('<circle class="dot"') == 2 and 'data-numbers="1,3"' in html
    # The interval of v3 as an error bar, and the accuracy in the format the rest of the page uses
    assert html.count('<path class="error-bar"') == 1
    assert "v3, trained on 30 labels: accuracy 0.80 ± 0.09 (30 labels)</title>" in html
    assert page_for(people["bob"], f"/projects/{project.id}/?partial=learning-curve")[0] == 403


def test_the_live_partial_sends_each_section_as_the_page_draws_it(team):
    project, people = team
    client = Client()
    client.force_login(people["alice"])
    page = client.get(f"/projects/{project.id}/").content.decode()
    # When the page's script asks for the live sections
    response = client.get(f"/projects/{project.id}/?partial=live")
    # Then a manager gets the counts, labels, review and model sections, each as the page has it
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    sections = response.json()["sections"]
    assert set(sections) == {"stats", "labels", "classes", "review", "model"}
    for html in sections.values():
        assert html.strip() in page
    assert '<b id="count-leased">1</b> being labeled now' in sections["stats"]
    assert '<b id="labels-by-people">6</b> labels by people' in sections["labels"]
    assert "v5</td><td>Training" in sections["model"] and "boom: out of memory" in sections["model"]
    assert '<span class="chip">serving</span>' in sections["model"] and "Take v4 away" in sections["model"]
    # And an annotator gets only the sections they see, a stranger nothing, a bad partial a 400
    annotator = Client()
    annotator.force_login(people["bob"])
    sections = annotator.get(f"/projects/{project.id}/?partial=live").json()["sections"]
    assert set(sections) == {"stats", "labels", "classes"}
    stranger = Client()
    stranger.force_login(make_user("eve"))
    assert stranger.get(f"/projects/{project.id}/?partial=live").status_code == 404
    bad = client.get(f"/projects/{project.id}/?partial=everything")
    assert bad.status_code == 400 and b"learning-curve or live" in bad.content


def test_the_confusion_table_draws_the_matrix_or_the_top_confusions():
    per_class = [{"name": n, "precision": None, "recall": None, "support": 0} for n in ("a", "b")]
    confusion = {"n": 6, "classes": ["a", "b"], "cells": [[0, 0, 3], [0, 1, 1], [1, 1, 2]], "per_class": per_class}
    table = confusion_table(confusion, multi_label=False)
    assert [[c["n"] for c in row["cells"]] for row in table["rows"]] == [[3, 1], [0, 2]]
    assert table["rows"][0]["cells"][1] == {"predicted": "b", "n": 1, "share": 0.25, "diagonal": False}
    assert "rows" not in confusion_table(confusion, multi_label=True)
    # Past MATRIX_MAX_CLASSES classes, the largest off-diagonal cells, largest first
    names = [f"c{i}" for i in range(MATRIX_MAX_CLASSES + 1)]
    many = {"n": 9, "classes": names, "per_class": [], "cells": [[0, 0, 5], [1, 2, 1], [3, 4, 3]]}
    assert confusion_table(many, multi_label=False)["top"] == [
        {"given": "c3", "predicted": "c4", "n": 3},
        {"given": "c1", "predicted": "c2", "n": 1},
    ]


def test_the_page_links_confusion_cells_to_the_items_they_count(team):
    project, people = team
    confusion = {
        "classes": ["cat", "dog", "bird"],
        "n": 4,
        "cells": [[0, 0, 2], [0, 1, 1], [2, 2, 1]],
        "precision": [1.0, 0.0, 1.0],
        "recall": [2 / 3, None, 1.0],
        "support": [3, 0, 1],
    }
    version(project, 6, ModelVersion.Status.READY, 40, metrics={"val_accuracy": 0.75, "confusion": confusion})
    status, html = page_for(people["alice"], f"/projects/{project.id}/")
    assert status == 200 and "Where v6 goes wrong" in html
    row = html[html.index('<th scope="row">cat</th>') :].split("</tr>")[0]
    assert ">2<" in row and ">1<" in row and "<td>1.00</td><td>0.67</td><td>3</td>" in row
    assert f"/projects/{project.id}/items/?label=cat&amp;predicted=dog" in row
