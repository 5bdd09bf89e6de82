"""The whole loop on the real stack: HTTP API → real Redis → real Celery worker → PyTorch → ranked queue."""

from __future__ import annotations

import io
import zipfile
from collections import Counter

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotator.models import Item, ItemClass, ModelVersion, Project
from ml.scoring import get_scorer
from tests.factories import digits_pngs, make_user, wait_for

N_IMAGES = 300
N_LABELS = 30


@pytest.mark.django_db(transaction=True)
def test_label_retrain_rescore_serve(celery_worker):
    # Given a project created through the API and filled with digits from a zip upload
    client = APIClient()
    client.force_authenticate(make_user("annotator1", can_create_projects=True))
    response = client.post(
        "/api/projects/",
        {"name": "Digits", "labels": [str(d) for d in range(10)], "retrain_every": 10, "strategy": "margin"},
        format="json",
    )
    assert response.status_code == 201
    pid = response.json()["id"]
    images, truth = digits_pngs(N_IMAGES)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i, data in enumerate(images):
            zf.writestr(f"digit_{i:04d}.png", data)
    archive.seek(0)
    archive.name = "digits.zip"
    response = client.post(f"/api/projects/{pid}/items/", {"files": [archive]}, format="multipart")
    assert response.status_code == 201
    assert response.json()["imported"] == N_IMAGES - response.json()["duplicates"]
    truth_by_name = {f"digit_{i:04d}.png": label for i, label in enumerate(truth)}

    # When an annotator labels 30 items with their true labels
    for _ in range(N_LABELS):
        item = client.get(f"/api/projects/{pid}/next/").json()
        response = client.post(
            f"/api/items/{item['id']}/annotations/",
            {"label": str(truth_by_name[item["filename"]]), "client_token": f"t{item['id']}"},
            format="json",
        )
        assert response.status_code == 201

    # Then the worker trains until a version covering all 30 labels is ready
    def latest_ready():
        versions = client.get(f"/api/projects/{pid}/model-versions/").json()
        ready = [v for v in versions if v["status"] == "ready" and v["n_labels"] >= N_LABELS]
        return ready[-1] if ready else None

    version = wait_for(latest_ready, 240, "a ready model version trained on 30 labels")
    wait_for(
        lambda: (
            Project.objects.filter(id=pid, training_requested=False, training_lock_until__isnull=True).exists()
            and not ModelVersion.objects.filter(project_id=pid, status="training").exists()
        ),
        240,
        "training to settle",
    )
    version = latest_ready()
    assert version["metrics"]["val_accuracy"] is not None
    assert version["metrics"]["val_accuracy"] >= 0.3, version  # chance is 0.1

    # Every unlabeled item has a pre-label from that version, and pre-labels beat chance by far
    unlabeled = Item.objects.filter(project_id=pid, status="unlabeled").select_related("pred_label")
    assert unlabeled.count() == N_IMAGES - N_LABELS - response_duplicates(pid)
    assert not unlabeled.filter(pred_label__isnull=True).exists()
    correct = [int(i.pred_label.name) == truth_by_name[i.original_name] for i in unlabeled]
    assert np.mean(correct) >= 0.5, np.mean(correct)

    # And /next serves the planned batch first: up to half of it looking for the classes with fewer
    # than 3 labels (``ml.selection.plan_batch``), the others a diverse pick among the 5 × retrain_every
    # most uncertain by the strategy's score over the stored probabilities; then the rest in
    # descending order of that score
    probs = np.array([i.pred_probs for i in unlabeled], dtype=np.float64)
    expected = np.sort(get_scorer("margin")(probs[:, :, None]))[::-1]
    consensus = ItemClass.objects.filter(item__project_id=pid, item__status="labeled", role="consensus")
    counts = Counter(consensus.values_list("label_class__name", flat=True))
    rare = [str(d) for d in range(10) if counts[str(d)] < 3]
    batch_size = 10
    served = []
    for _ in range(batch_size + 5):
        body = client.get(f"/api/projects/{pid}/next/", {"exclude": ",".join(str(s["id"]) for s in served)}).json()
        served.append(body)
        assert body["prelabel"] is not None and body["prelabel"]["model_version"] >= 1
    scores = [s["score"] for s in served]
    uncertain = [s for s in scores[:batch_size] if s >= expected[5 * batch_size - 1] - 1e-6]
    assert len(uncertain) >= batch_size - (batch_size // 2 if rare else 0), (scores, rare)
    assert max(scores[:batch_size]) == pytest.approx(expected[0], abs=1e-3)
    assert scores[batch_size:] == sorted(scores[batch_size:], reverse=True)


def response_duplicates(pid: int) -> int:
    """Digits holds a few identical images; they were skipped as duplicates on import."""
    return N_IMAGES - Item.objects.filter(project_id=pid).count()
