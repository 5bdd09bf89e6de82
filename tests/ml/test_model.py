"""The network: shapes for every input size, MC dropout, and the save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.model import build_model, is_multi_label, load_model, predict_proba, save_model, to_tensor


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(4, input_size=32, dropout=0.5)


@pytest.mark.parametrize("size", [16, 24, 32, 64, 96, 128])
def test_build_model_works_for_input_sizes(size):
    net = build_model(3, input_size=size).eval()
    with torch.inference_mode():
        assert net(to_tensor(random_images(2, size))).shape == (2, 3)
        assert net.features(to_tensor(random_images(2, size))).ndim == 2


def test_to_tensor_shape_and_normalisation():
    images = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 128, 255)
    x = to_tensor(images)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-2.0, 128 / 63.75 - 2, 2.0]))


def test_predict_proba_shapes_and_normalisation(model):
    images = random_images(7)
    probs = predict_proba(model, images)
    assert probs.shape == (7, 4, 1) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    mc = predict_proba(model, images, mc_samples=5, batch_size=3)
    assert mc.shape == (7, 4, 5)
    np.testing.assert_allclose(mc.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_proba_empty(model):
    assert predict_proba(model, np.zeros((0, 32, 32, 3), dtype=np.uint8)).shape == (0, 4, 1)
    assert predict_proba(model, np.zeros((0, 32, 32, 3), dtype=np.uint8), mc_samples=6).shape == (0, 4, 6)


def test_single_sample_is_deterministic_and_batch_independent(model):
    images = random_images(9)
    a = predict_proba(model, images)
    b = predict_proba(model, images, batch_size=2)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a, predict_proba(model, images))


def test_mc_dropout_samples_differ_and_modes_are_restored(model):
    model.train()
    probs = predict_proba(model, random_images(3), mc_samples=8)
    assert not np.allclose(probs[:, :, 0], probs[:, :, 1])
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    predict_proba(model, random_images(3), mc_samples=8)
    assert not any(m.training for m in model.modules())


def test_mc_dropout_runs_the_backbone_once_per_batch(model):
    calls = []
    model.features.register_forward_hook(lambda *_: calls.append(1))
    predict_proba(model, random_images(10), mc_samples=20, batch_size=4)
    assert len(calls) == 3


def test_mc_dropout_keeps_batchnorm_in_eval(model):
    # Batch statistics would make an item's prediction depend on its batch mates.
    images = random_images(6)
    net = build_model(4, input_size=32, dropout=0.0)
    net.load_state_dict(model.state_dict())
    with_others = predict_proba(net, images, mc_samples=3)[:1]
    alone = predict_proba(net, images[:1], mc_samples=3)
    np.testing.assert_allclose(alone, with_others, rtol=1e-4, atol=1e-6)


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
