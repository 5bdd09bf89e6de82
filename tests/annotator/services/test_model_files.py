"""Taking the model away: managers download the current version as TorchScript, ONNX, JSON or a zip;
a box project's version is its detector."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from rest_framework.test import APIClient

from annotator import paths
from annotator.models import BoxRole, Item, ItemBox, ModelVersion, Project
from annotator.selectors.classes import class_order
from annotator.services.annotations import annotation_create
from annotator.services.classes import label_class_add
from annotator.services.imports import items_import_folder, items_import_uploads
from annotator.services.members import membership_add
from annotator.services.model_files import MODEL_EXPORT_FILES, model_accuracy, model_readme
from annotator.services.training import training_request
from annotator.tasks import train_project_task
from ml.data import cache_read, decode_displayed
from ml.detection.export import OUTPUT_NAMES, letterbox_numpy, postprocess
from ml.detection.loop import MAX_PREBOXES, MIN_PREBOX_SCORE
from ml.evaluation.scenes import write_scenes
from ml.evaluation.shapes import CLASSES as SHAPES
from ml.models.cnn import build_model
from ml.models.files import save_model
from tests.annotator.helpers import client_for, served_probs
from tests.factories import digits_pngs, make_project, make_user

pytestmark = pytest.mark.django_db


def download(client: APIClient, project: Project, fmt: str) -> bytes:
    response = client.get(f"/api/projects/{project.id}/model/?format={fmt}")
    assert response.status_code == 200, response.content
    assert f"pets-v1-{MODEL_EXPORT_FILES[fmt]}" in response["Content-Disposition"]
    return response.getvalue()


def project_with_a_model(user, monkeypatch, family: str) -> Project:
    """A 3-class project of 18 digits, 9 labeled, and version 1 published by the real training task."""
    # A handful of training steps: the download, not the accuracy, is under test.
    monkeypatch.setattr("ml.crossfit.schedule_steps", lambda n, head=False: 5)
    project = make_project(user, labels=["0", "1", "2"], model_family=family)
    pngs, truth = digits_pngs(60)
    chosen = [i for i, t in enumerate(truth) if t < 3][:18]
    items_import_uploads(project=project, files=[(f"{i}.png", io.BytesIO(pngs[i])) for i in chosen], user=user)
    for item in list(Item.objects.filter(project=project).order_by("id"))[:9]:
        annotation_create(item=item, user=user, label=str(truth[int(item.original_name[:-4])]))
    training_request(project_id=project.id)  # enqueued on commit: never, in this test
    assert train_project_task(project.id) == 1  # the worker's task, run here
    return project


@pytest.mark.parametrize("family", ["cnn", "pretrained"])
def test_manager_downloads_files_that_predict_what_is_served(user, monkeypatch, family):
    # Given a project whose worker has published version 1
    project = project_with_a_model(user, monkeypatch, family)
    pool = list(Item.objects.filter(project=project, status="unlabeled").order_by("id")[:6])
    images = cache_read(paths.cache_path(project.id, project.input_size), [i.cache_row for i in pool], 32)
    served = served_probs(project, images)
    published = np.array([item.pred_probs for item in pool])  # the pre-labels, rounded to 4 decimals
    np.testing.assert_allclose(served, published, atol=1e-4)
    manager = client_for(user)

    # When a manager downloads the zip bundle (built now), then each file on its own
    bundle = zipfile.ZipFile(io.BytesIO(download(manager, project, "zip")))
    assert sorted(bundle.namelist()) == ["README.txt", "model.json", "model.onnx", "model.pt"]
    assert "onnxruntime" in bundle.read("README.txt").decode()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the export was built a second time")

    monkeypatch.setattr("ml.export.trace", no_rebuild)
    files = {fmt: download(manager, project, fmt) for fmt in ("torchscript", "onnx", "json")}

    # Then the files were built once and cached beside the weights
    assert files["onnx"] == bundle.read("model.onnx") and files["json"] == bundle.read("model.json")
    weights = paths.model_path(ModelVersion.objects.get(project=project).weights)
    assert len(list(weights.parent.glob(f"{weights.stem}.export-*/model.pt"))) == 1
    # And the card names the classes and the input
    card = json.loads(files["json"])
    assert card["classes"] == ["0", "1", "2"] and card["model_version"] == 1
    prep = card["preprocessing"]
    assert prep["model_family"] == family and prep["input_shape"] == ["N", 3, 32, 32]
    # And TorchScript (torch only) and ONNX (onnxruntime only) agree with the served model on cached images
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    with torch.no_grad():
        from_ts = torch.jit.load(io.BytesIO(files["torchscript"]))(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
    from_onnx = session.run([prep["output_name"]], {prep["input_name"]: x})[0]
    for probs in (from_ts, from_onnx):
        np.testing.assert_array_equal(probs.argmax(axis=1), served.argmax(axis=1))
        np.testing.assert_allclose(probs, served, atol=1e-4)


def test_a_box_project_downloads_its_detector_which_finds_the_served_pre_boxes(user, tmp_path, settings):
    # Given a box project of generated scenes, 10 with their boxes and 3 unlabeled ones (wide, tall,
    # square), and version 1 published by the real training task
    settings.DETECTOR_INPUT_SIZE, settings.DETECTOR_EPOCHS = 64, 3  # a fast round: the files are under test
    settings.DETECTOR_MIN_STEPS = 0
    write_scenes(tmp_path / "labeled", n_images=10, size=64, seed=5)
    write_scenes(tmp_path / "pool", n_images=3, size=96, seed=6)
    (tmp_path / "pool" / "annotations.json").unlink()  # these come in unlabeled
    crops = [(0, 0, 96, 60), (20, 0, 70, 96), (0, 0, 96, 96)]
    for png, crop in zip(sorted((tmp_path / "pool" / "images").glob("*.png")), crops, strict=True):
        with Image.open(png) as img:
            cropped = img.crop(crop)
        cropped.save(png)
    project = make_project(user, labels=list(SHAPES), kind="boxes", retrain_every=4)
    items_import_folder(project=project, root=tmp_path / "labeled", user=user)
    items_import_folder(project=project, root=tmp_path / "pool", user=user)
    Project.objects.filter(id=project.id).update(training_requested=True)
    assert train_project_task(project.id) == 1
    version = ModelVersion.objects.get(project=project)
    assert version.status == "ready" and version.metrics["val_n"] == 5, version.error
    manager = client_for(user)
    # And the project page offers the detector's downloads
    page = APIClient()
    page.force_login(user)
    html = page.get(f"/projects/{project.id}/").content.decode()
    assert f"/api/projects/{project.id}/model/?format=onnx" in html and "classes, input and post-processing" in html

    # When a manager downloads the zip bundle, then each file on its own
    bundle = zipfile.ZipFile(io.BytesIO(download(manager, project, "zip")))
    assert sorted(bundle.namelist()) == ["README.txt", "model.json", "model.onnx", "model.pt"]
    files = {fmt: download(manager, project, fmt) for fmt in ("torchscript", "onnx", "json")}
    assert files["onnx"] == bundle.read("model.onnx") and files["json"] == bundle.read("model.json")

    # Then the card names the classes, the letterboxed input, the outputs, the post-processing and the mAP
    card = json.loads(files["json"])
    assert card["kind"] == "boxes" and card["classes"] == list(SHAPES) and card["model_version"] == 1
    assert card["input_size"] == 64 and card["input_shape"] == ["N", 3, 64, 64]
    assert list(card["outputs"]) == list(OUTPUT_NAMES) and card["outputs"]["boxes"]["shape"] == ["N", 100, 4]
    assert card["postprocessing"]["preboxes"] == {"top_k": MAX_PREBOXES, "min_score": MIN_PREBOX_SCORE}
    assert card["metrics"]["val_map50"] == version.metrics["val_map50"]
    # And the README states the mAP as the pages do and carries the post-processing
    readme = bundle.read("README.txt").decode()
    assert readme.startswith(f"Pets, model v1, trained on {version.n_labels} labels\nmAP@0.5 ")
    assert "(5 held-out images): the detector's" in readme and "def postprocess(" in readme

    # And TorchScript and ONNX, on the pool's images letterboxed and post-processed as the README and the
    # card say, find the pre-boxes the tool serves for them
    pool = list(Item.objects.filter(project=project, status="unlabeled").order_by("id"))
    placed = []
    for item in pool:
        with item.file.open("rb") as fh:
            placed.append(letterbox_numpy(decode_displayed(fh, 2 * 64)[0], 64))
    assert {info[1:3] for _, info in placed} >= {(0.0, 12.0), (15.0, 0.0)}  # bars above and below, left and right
    x = np.stack([pixels for pixels, _ in placed])
    with torch.no_grad():
        from_ts = [t.numpy() for t in torch.jit.load(io.BytesIO(files["torchscript"]))(torch.from_numpy(x))]
    session = ort.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
    from_onnx = session.run(list(OUTPUT_NAMES), {card["input_name"]: x})
    ids = class_order(project_id=project.id).ids
    n_served = 0
    for outputs in (from_ts, from_onnx):
        for i, item in enumerate(pool):
            peaks = (output[i][:MAX_PREBOXES] for output in outputs)
            boxes, _, classes = postprocess(*peaks, placed[i][1], min_score=MIN_PREBOX_SCORE)
            served = ItemBox.objects.filter(item=item, role=BoxRole.PREDICTED).order_by("id")
            assert [ids[int(c)] for c in classes] == list(served.values_list("label_class_id", flat=True))
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).reshape(-1, 4)
            np.testing.assert_allclose(xywh, np.array(served.values_list("x", "y", "w", "h")).reshape(-1, 4), atol=0.02)
            n_served += len(classes)
    assert n_served > 0


def test_only_managers_and_only_a_ready_model_and_a_known_format(user):
    # Given a project without a ready model version, its manager and an annotator
    project = make_project(user)
    bob = make_user("bob")
    membership_add(project=project, user=bob)
    ModelVersion.objects.create(project=project, number=1, strategy="entropy", n_labels=0)  # still training
    url = f"/api/projects/{project.id}/model/"
    # Then the annotator is refused, the manager told there is no model, and a bad format named
    assert client_for(bob).get(url + "?format=onnx").status_code == 403
    response = client_for(user).get(url + "?format=onnx")
    assert response.status_code == 404 and "no ready model version" in response.json()["detail"]
    response = client_for(user).get(url + "?format=keras")
    assert response.status_code == 400
    assert "valid formats: zip, torchscript, onnx, json" in response.json()["format"][0]
    # And the project page offers the download only once a version is ready
    page = APIClient()
    page.force_login(user)
    assert f"/api/projects/{project.id}/model/" not in page.get(f"/projects/{project.id}/").content.decode()
    ModelVersion.objects.filter(project=project).update(status="ready")
    assert f"/api/projects/{project.id}/model/?format=zip" in page.get(f"/projects/{project.id}/").content.decode()


def test_a_class_added_after_training_is_learned_by_the_next_version(user, monkeypatch):
    # Given version 1 trained on 3 classes, then a fourth class added and used
    project = project_with_a_model(user, monkeypatch, "cnn")
    label_class_add(project=project, name="other")
    item = Item.objects.filter(project=project, status="unlabeled").order_by("id").first()
    annotation_create(item=item, user=user, label="other")
    # When version 1 is downloaded, then version 2 is trained and downloaded
    card_v1 = json.loads(client_for(user).get(f"/api/projects/{project.id}/model/?format=json").getvalue())
    training_request(project_id=project.id)
    assert train_project_task(project.id) == 2
    card_v2 = json.loads(client_for(user).get(f"/api/projects/{project.id}/model/?format=json").getvalue())
    # Then version 1 names its 3 outputs, version 2 its 4, and the pre-labels carry 4 probabilities
    assert card_v1["classes"] == ["0", "1", "2"]
    assert card_v2["classes"] == ["0", "1", "2", "other"]
    probs = Item.objects.filter(project=project, status="unlabeled").values_list("pred_probs", flat=True)
    assert {len(p) for p in probs} == {4}


def test_the_card_and_the_readme_state_the_accuracy_as_the_pages_do(user):
    # Given version 1 with (untrained) weights and an accuracy estimate with its interval: the card is under test
    project = make_project(user)
    weights = paths.model_relpath(project.id, 1)
    paths.model_path(weights).parent.mkdir(parents=True, exist_ok=True)
    save_model(build_model(2, input_size=project.input_size), paths.model_path(weights), {})
    metrics = {"val_accuracy": 0.78, "val_accuracy_low": 0.69, "val_accuracy_high": 0.87, "val_n": 66, "steps": 5}
    ModelVersion.objects.create(
        project=project, number=1, status="ready", strategy="entropy", n_labels=9, metrics=metrics, weights=weights
    )
    # When the manager downloads the zip
    bundle = zipfile.ZipFile(io.BytesIO(download(client_for(user), project, "zip")))
    # Then model.json carries the estimate, and the README says it in the pages' words
    card = json.loads(bundle.read("model.json"))
    assert card["accuracy"] == {"estimate": 0.78, "low": 0.69, "high": 0.87, "n_labels": 66}
    readme = bundle.read("README.txt").decode()
    assert readme.startswith("Pets, model v1, trained on 9 labels\nAccuracy 0.78 ± 0.09 (66 labels): the estimated")
    assert "Running the exported model" in readme


def test_versions_without_an_interval_get_null_fields_and_say_so():
    # Given an older version with only an accuracy, and one with none
    assert model_accuracy({"val_accuracy": 0.5}) == {
        "estimate": 0.5,
        "low": None,
        "high": None,
        "n_labels": None,
    }
    assert model_accuracy({}) == model_accuracy(None) == dict.fromkeys(["estimate", "low", "high", "n_labels"])
    project = Project(name="Old")
    old = ModelVersion(project=project, number=2, n_labels=40, metrics={"val_accuracy": 0.5})
    none = ModelVersion(project=project, number=1, n_labels=20, metrics={})
    assert "Accuracy 0.50: the estimated share" in model_readme(old)
    assert model_readme(none) == "Old, model v1, trained on 20 labels\nAccuracy: not measured for this version.\n\n"
