"""Multi-label projects: several classes per image through the API, pre-label outcomes, overlap
consensus, exports that carry every label, and a model with a sigmoid per class."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import onnxruntime as ort
import pytest

from annotator import paths
from annotator.models import Annotation, Item, ModelVersion, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from annotator.services.training import training_request
from annotator.tasks import train_project_task
from ml.data import cache_read
from tests.annotator.helpers import client_for, served_probs
from tests.factories import annotation_names, answer_names, digits_pngs, make_project, make_user, png_bytes

pytestmark = pytest.mark.django_db

CLASSES = ["cat", "dog", "outdoor"]


@pytest.fixture
def project(user):
    project = make_project(user, labels=CLASSES, multi_label=True)
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(500 + i))) for i in range(3)], user=user
    )
    return project


def items(project):
    return list(Item.objects.filter(project=project).order_by("id"))


def post(api, item, body):
    return api.post(f"/api/items/{item.id}/annotations/", body, format="json")


def test_labels_are_stored_in_class_order_and_the_item_is_labeled(api, project):
    first = items(project)[0]
    response = post(api, first, {"labels": ["outdoor", "cat", "cat"]})
    assert response.status_code == 201, response.json()
    assert response.json()["labels"] == ["cat", "outdoor"] and response.json()["label"] is None
    first.refresh_from_db()
    assert (first.status, answer_names(first)) == ("labeled", ["cat", "outdoor"])
    assert annotation_names(Annotation.objects.get(item=first)) == ["cat", "outdoor"]


def test_an_empty_list_says_no_class_applies(api, project):
    first = items(project)[0]
    assert post(api, first, {"labels": []}).status_code == 201
    first.refresh_from_db()
    assert (first.status, answer_names(first)) == ("labeled", [])
    assert annotation_names(Annotation.objects.get(item=first)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"label": "cat"}, "multi-label"),
        ({"labels": ["cat", "horse"]}, "horse"),
    ],
)
def test_bad_multi_label_input_is_400_with_a_reason(api, project, body, message):
    response = post(api, items(project)[0], body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_single_label_projects_still_need_label(api, user):
    project = make_project(user, name="Single")
    items_import_uploads(project=project, files=[("a.png", io.BytesIO(png_bytes(1)))], user=user)
    response = post(api, items(project)[0], {"labels": ["cat"]})
    assert response.status_code == 400 and "label" in response.json()["detail"]


def test_prelabel_outcome_compares_the_predicted_set(api, project):
    # Given pre-labels: cat 0.9, dog 0.2, outdoor 0.7 → the model says {cat, outdoor}
    first, second = items(project)[:2]
    version = ModelVersion.objects.create(project=project, number=1, status="ready", strategy="entropy", n_labels=0)
    Item.objects.filter(project=project).update(
        pred_label=project.classes.get(name="cat"),
        pred_confidence=0.9,
        pred_probs=[0.9, 0.2, 0.7],
        pred_version=version,
    )
    # The next item shows the probabilities so the page can preselect the predicted set
    served = api.get(f"/api/projects/{project.id}/next/").json()
    assert served["prelabel"]["probs"] == [0.9, 0.2, 0.7]
    assert post(api, first, {"labels": ["outdoor", "cat"]}).json()["prelabel"] == "accepted"
    assert post(api, second, {"labels": ["cat"]}).json()["prelabel"] == "corrected"


def test_overlap_consensus_is_the_classes_half_or_more_chose(project, user):
    # Given three annotators per item
    Project.objects.filter(id=project.id).update(labels_per_item=3)
    project.refresh_from_db()
    item = items(project)[0]
    answers = {user: ["cat", "outdoor"], make_user("bob"): ["cat"], make_user("carol"): ["cat", "dog", "outdoor"]}
    for person, labels in answers.items():
        fresh = Item.objects.select_related("project").get(id=item.id)
        annotation_create(item=fresh, user=person, labels=labels)
    item.refresh_from_db()
    # cat 3/3, outdoor 2/3, dog 1/3 → {cat, outdoor}; agreement = mean(3/3, 2/3, 2/3)
    assert item.status == "labeled" and answer_names(item) == ["cat", "outdoor"]
    assert item.agreement == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_undo_puts_a_multi_label_item_back(api, project):
    first = items(project)[0]
    post(api, first, {"labels": ["dog"]})
    assert answer_names(first) == ["dog"]
    assert api.post(f"/api/projects/{project.id}/undo/").status_code == 200
    first.refresh_from_db()
    assert (first.status, answer_names(first)) == ("unlabeled", [])


def test_exports_carry_every_label(api, project):
    first, second, third = items(project)
    post(api, first, {"labels": ["cat", "outdoor"]})
    post(api, second, {"labels": ["dog"]})
    post(api, third, {"labels": []})

    def get(fmt):
        response = api.get(f"/api/projects/{project.id}/export/?format={fmt}")
        assert response.status_code == 200
        return b"".join(response.streaming_content) if response.streaming else response.getvalue()

    rows = list(csv.DictReader(io.StringIO(get("csv").decode())))
    assert [r["label"] for r in rows] == ["cat;outdoor", "dog", ""]
    records = [json.loads(line) for line in get("jsonl").decode().splitlines()]
    assert [r["labels"] for r in records] == [["cat", "outdoor"], ["dog"], []]
    coco = json.loads(get("coco"))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list[str]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(names[annotation["category_id"]])
    assert len(coco["images"]) == 3
    assert by_image == {first.id: ["cat", "outdoor"], second.id: ["dog"]}
    with zipfile.ZipFile(io.BytesIO(get("imagefolder"))) as archive:
        folders = sorted(name.split("/")[0] for name in archive.namelist())
    assert folders == ["cat", "dog", "outdoor"]


def test_the_worker_trains_a_multi_label_model_whose_prelabels_and_download_agree(user, monkeypatch):
    # Given a multi-label project of digits, half labeled with their properties (some with none)
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 20)
    project = make_project(user, labels=["even", "small"], multi_label=True, model_family="pretrained")
    pngs, truth = digits_pngs(20)
    items_import_uploads(project=project, files=[(f"{i}.png", io.BytesIO(p)) for i, p in enumerate(pngs)], user=user)
    for item in list(Item.objects.select_related("project").filter(project=project).order_by("id"))[:10]:
        digit = truth[int(item.original_name[:-4])]
        names = [name for name, yes in (("even", digit % 2 == 0), ("small", digit < 5)) if yes]
        annotation_create(item=item, user=user, labels=names)
    training_request(project_id=project.id)

    # When the worker's task runs
    assert train_project_task(project.id) == 1

    # Then the version trained on all ten labels, with one independent probability per class
    version = ModelVersion.objects.get(project=project)
    assert (
        version.status == "ready"
        and version.n_labels == 10
        and version.metrics["n_train"] == version.metrics["val_n"] == 10
    )
    pool = list(Item.objects.filter(project=project, status="unlabeled").order_by("id"))
    images = cache_read(paths.cache_path(project.id, project.input_size), [i.cache_row for i in pool], 32)
    served = served_probs(project, images)
    published = np.array([item.pred_probs for item in pool])
    np.testing.assert_allclose(served, published, atol=1e-4)
    assert not np.allclose(published.sum(axis=1), 1.0, atol=1e-3)
    # And the downloaded model says so and gives the same sigmoid probabilities
    manager = client_for(user)
    card = json.loads(manager.get(f"/api/projects/{project.id}/model/?format=json").getvalue())
    assert card["multi_label"] is True and card["classes"] == ["even", "small"]
    onnx_file = manager.get(f"/api/projects/{project.id}/model/?format=onnx").getvalue()
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["probabilities"], {"images": x})[0], served, atol=1e-4)
