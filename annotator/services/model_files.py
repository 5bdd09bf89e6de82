"""Model files: what a ready model version is downloaded as (TorchScript, ONNX, a JSON card, a zip of
all with a README), built once from the served weights and written whole or not at all; and the
accuracy estimate the card and the README state. A classification project's version is its
classifier (``ml.export``), a box project's its detector (``ml.detection.export``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotator import paths
from annotator.models import ModelFamily, ModelVersion
from annotator.selectors.classes import project_classes
from annotator.services.errors import ServiceError
from annotator.templatetags.figures import accuracy_text

if TYPE_CHECKING:
    from torch import nn

#: Download formats of a model version and the file each one is.
MODEL_EXPORT_FILES = {"zip": "model.zip", "torchscript": "model.pt", "onnx": "model.onnx", "json": "model.json"}


def model_version_export(*, version: ModelVersion, fmt: str) -> Path:
    """The file of a ready ``version`` in ``fmt``: TorchScript, ONNX, the JSON card, or a zip of all with a README.

    Built once, on the first request, from the weights the worker serves (loaded as the
    worker loads them), into a folder beside them named after their content
    (``v3.pt`` -> ``v3.export-<sha256 prefix>/``: a reused project id with new weights
    gets new files), written under a temporary name and renamed, so readers see every
    file or none. Raises ``ValueError`` for an unknown format and ``ServiceError`` when
    the version cannot be exported (not ready, weights missing, TorchScript backbone changed
    since it was trained).
    """
    if fmt not in MODEL_EXPORT_FILES:
        raise ValueError(f"Unknown model format {fmt!r}; valid formats: {', '.join(MODEL_EXPORT_FILES)}.")
    if version.status != ModelVersion.Status.READY or not version.weights:
        raise ServiceError(f"Model version {version.number} is not ready.")
    weights = paths.model_path(version.weights)
    if not weights.is_file():
        raise ServiceError(f"The weights of model version {version.number} are missing; retrain to make new ones.")
    folder = weights.with_name(f"{weights.stem}.export-{hashlib.sha256(weights.read_bytes()).hexdigest()[:16]}")
    if not folder.is_dir():
        _model_version_build_exports(version, weights, folder)
        for stale in weights.parent.glob(f"{weights.stem}.export-*"):
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
    return folder / MODEL_EXPORT_FILES[fmt]


def _model_version_build_exports(version: ModelVersion, weights: Path, folder: Path) -> None:
    from ml import export  # torch: imported only when a version is first downloaded

    build = _detector_network if version.metrics.get("detector") else _classifier_network
    network, input_size, card, usage, output_names = build(version, weights)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        example = export.example_input(input_size)
        traced = export.trace(network, example)
        export.export_torchscript(traced, example, tmp / MODEL_EXPORT_FILES["torchscript"])
        export.export_onnx(traced, example, tmp / MODEL_EXPORT_FILES["onnx"], output_names=output_names)
        (tmp / MODEL_EXPORT_FILES["json"]).write_text(json.dumps(card, indent=2) + "\n")
        with zipfile.ZipFile(tmp / MODEL_EXPORT_FILES["zip"], "w", zipfile.ZIP_DEFLATED) as bundle:
            for fmt in ("torchscript", "onnx", "json"):
                bundle.write(tmp / MODEL_EXPORT_FILES[fmt], MODEL_EXPORT_FILES[fmt])
            bundle.writestr("README.txt", model_readme(version) + usage)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise  # not another request finishing first: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: What a build step hands to the writer: the network, its input side, the card, the README's usage
#: text and the ONNX output names.
_Build = tuple["nn.Module", int, dict[str, Any], str, tuple[str, ...]]


def _classifier_network(version: ModelVersion, weights: Path) -> _Build:
    """A classification project's version: the served classifier, images in, probabilities out."""
    from ml import export
    from ml.embeddings import load_backbone
    from ml.models.files import load_model

    project = version.project
    model, meta = load_model(weights)
    family, input_size = version.model_family, int(meta.get("input_size", project.input_size))
    backbone = None
    if family != ModelFamily.CNN:
        backbone = load_backbone(family, project.backbone_path or None)
        if meta.get("backbone") not in (None, backbone.key):
            raise ServiceError("The project's backbone file changed since this version was trained; retrain first.")
    try:
        network = export.image_classifier(
            model, family=family, input_size=input_size, backbone=backbone, multi_label=project.multi_label
        )
    except ValueError as exc:
        raise ServiceError(str(exc)) from exc
    card = {
        "project": project.name,
        "model_version": version.number,
        # Classes are only appended, so a version trained on C classes outputs the first C.
        "classes": [c.name for c in project_classes(project=project)][: int(meta["n_classes"])],
        "multi_label": project.multi_label,
        "preprocessing": export.preprocessing(family=family, input_size=input_size),
        "metrics": {"val_accuracy": version.metrics.get("val_accuracy"), "n_labels": version.n_labels},
        "accuracy": model_accuracy(version.metrics),
        "files": {"torchscript": MODEL_EXPORT_FILES["torchscript"], "onnx": MODEL_EXPORT_FILES["onnx"]},
    }
    return network, input_size, card, export.USAGE, (export.OUTPUT_NAME,)


def _detector_network(version: ModelVersion, weights: Path) -> _Build:
    """A box project's version: the frozen MobileNetV2 and the trained head, letterboxed images in,
    each image's best peaks out (``ml.detection.export``)."""
    from ml.detection import export as detector
    from ml.mobilenet import load_mobilenet_v2

    head, meta = detector.load_head(weights)
    input_size = int(meta["input_size"])
    network = detector.image_detector(head, load_mobilenet_v2(), input_size)
    metrics = version.metrics
    card = {
        "project": version.project.name,
        "model_version": version.number,
        "kind": "boxes",
        "detector": meta.get("detector", "centernet"),
        "classes": list(meta["classes"]),  # the class order the head was trained on
        **detector.detector_card(input_size=input_size, top_k=network.top_k),
        "metrics": {
            "val_map50": metrics.get("val_map50"),
            "val_map": metrics.get("val_map"),
            "val_n": metrics.get("val_n"),
            "n_labels": version.n_labels,
        },
        "files": {"torchscript": MODEL_EXPORT_FILES["torchscript"], "onnx": MODEL_EXPORT_FILES["onnx"]},
    }
    return network, input_size, card, detector.usage(network.top_k), detector.OUTPUT_NAMES


def model_accuracy(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The accuracy estimate of a version for its model card: ``{"estimate", "low", "high", "n_labels"}``
    (the 95% interval and the labels it rests on), each ``None`` when the version did not record it."""
    metrics = metrics or {}
    keys = {"estimate": "val_accuracy", "low": "val_accuracy_low", "high": "val_accuracy_high", "n_labels": "val_n"}
    return {name: metrics.get(key) for name, key in keys.items()}


def model_readme(version: ModelVersion) -> str:
    """The head of the download's README.txt: which version, and its accuracy (a detector's mAP) in the
    pages' words."""
    head = f"{version.project.name}, model v{version.number}, trained on {version.n_labels} labels\n"
    if (version.metrics or {}).get("detector"):
        if (version.metrics or {}).get("val_map50") is None:
            return head + "mAP: not measured for this version.\n\n"
        return head + (
            f"{accuracy_text(version.metrics)}: the detector's mean average precision at IoU 0.5 on labeled\n"
            'images it did not train on, by pycocotools (in model.json: "metrics").\n\n'
        )
    if model_accuracy(version.metrics)["estimate"] is None:
        return head + "Accuracy: not measured for this version.\n\n"
    return head + (
        f"Accuracy {accuracy_text(version.metrics)}: the estimated share of the project's images whose\n"
        "top class (multi-label: whole set of classes) is right, ± half its 95% interval, and the\n"
        'labels the estimate rests on (in model.json: "accuracy").\n\n'
    )
