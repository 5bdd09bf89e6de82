"""Model files (``ml/models/files.py``): the save/load round trip, old files, atomic replacement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.models.cnn import build_model, is_multi_label
from ml.models.files import load_model, save_model
from ml.models.predict import predict_proba


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_save_load_round_trip(model, tmp_path):
    images = random_images(5)
    path = tmp_path / "models" / "v1.pt"
    save_model(model, path, {"project": 3, "version": np.int64(1), "n_classes": 4})
    loaded, meta = load_model(path)
    np.testing.assert_array_equal(predict_proba(loaded, images), predict_proba(model, images))
    assert meta == {
        "project": 3,
        "version": 1,
        "n_classes": 4,
        "input_size": 32,
        "dropout": 0.5,
        "multi_label": False,
        "stem_stride": 2,
    }
    assert [p.name for p in path.parent.iterdir()] == ["v1.pt"]  # no temporary file left behind


def test_files_saved_before_multi_label_models_still_load(model, tmp_path):
    # Given a model file written before the arch recorded multi_label
    path = tmp_path / "old.pt"
    save_model(model, path, {})
    payload = torch.load(path, weights_only=True)
    del payload["arch"]["multi_label"]
    torch.save(payload, path)
    # Then it loads as the single-label (softmax) model it is
    loaded, _ = load_model(path)
    assert not is_multi_label(loaded)
    np.testing.assert_allclose(predict_proba(loaded, random_images(3))[:, :, 0].sum(axis=1), 1.0, atol=1e-5)


def test_save_rejects_meta_that_contradicts_the_model(model, tmp_path):
    with pytest.raises(ValueError, match="n_classes"):
        save_model(model, tmp_path / "m.pt", {"n_classes": 5})
    assert not (tmp_path / "m.pt").exists()


def test_save_replaces_an_existing_file(model, tmp_path):
    path = tmp_path / "m.pt"
    save_model(build_model(2, input_size=16), path, {})
    save_model(model, path, {"note": "second"})
    _, meta = load_model(path)
    assert meta["n_classes"] == 4 and meta["note"] == "second"
