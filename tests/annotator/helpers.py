"""Helpers shared by the annotator tests: upload files, make a project's items, store a label, build request files,
download and run a served model."""

from __future__ import annotations

import io

import numpy as np
from rest_framework.test import APIClient

from annotator import paths
from annotator.models import Item, ModelVersion, Project
from annotator.services.annotations import annotation_create
from annotator.services.imports import items_import_uploads
from ml.embeddings import load_backbone
from ml.models.files import load_model
from ml.models.predict import predict_proba, predict_proba_features
from tests.factories import png_bytes


def upload(project, files, user=None):
    return items_import_uploads(project=project, files=[(name, io.BytesIO(data)) for name, data in files], user=user)


def make_items(project, n):
    items_import_uploads(
        project=project, files=[(f"{i}.png", io.BytesIO(png_bytes(300 + i))) for i in range(n)], user=None
    )
    items = list(Item.objects.filter(project=project).order_by("id"))
    for rank, item in enumerate(items):
        Item.objects.filter(id=item.id).update(priority=-rank)  # served in id order
    return items


def label(item, user, name, **kwargs):
    item = Item.objects.select_related("project").get(id=item.id)
    return annotation_create(item=item, user=user, label=name, **kwargs)[0]


def files(*pairs):
    out = []
    for name, data in pairs:
        f = io.BytesIO(data)
        f.name = name
        out.append(f)
    return {"files": out}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def served_probs(project: Project, images: np.ndarray) -> np.ndarray:
    """(N, C) probabilities of the current version on (N, S, S, 3) cached images, loaded as the worker loads it."""
    version = ModelVersion.objects.get(project=project, status="ready")
    model, _ = load_model(paths.model_path(version.weights))
    if version.model_family == "cnn":
        return predict_proba(model, images)[:, :, 0]
    backbone = load_backbone(version.model_family, project.backbone_path or None)
    return predict_proba_features(model, backbone.embed(images))[:, :, 0]
