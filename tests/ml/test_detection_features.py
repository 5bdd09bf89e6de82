"""``ml.detection.feature_cache``: the backbone's maps kept per image-cache row, computed once,
read back as the maps ``extract_features`` gives (to float16), with each image's letterbox."""

from __future__ import annotations

import numpy as np
import torch

from ml.detection.centernet import extract_features
from ml.detection.feature_cache import feature_dim, feature_paths, features_ensure, features_read
from ml.mobilenet import load_mobilenet_v2


def test_maps_are_computed_once_and_read_back_as_extracted(tmp_path):
    backbone = load_mobilenet_v2()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(40 + 8 * i, 64, 3), dtype=np.uint8) for i in range(5)]
    cache = tmp_path / "images_32.u8"
    loaded: list[int] = []

    def load(row: int) -> tuple[np.ndarray, tuple[int, int]]:
        loaded.append(row)
        return images[row], (images[row].shape[1], images[row].shape[0])

    # When three rows are asked for, then all five
    assert features_ensure(cache, 3, load, backbone, input_size=64) == 3
    assert features_ensure(cache, 5, load, backbone, input_size=64) == 2
    assert features_ensure(cache, 5, load, backbone, input_size=64) == 0
    # Then each image went through the backbone once
    assert loaded == [0, 1, 2, 3, 4]
    maps_path, box_path = feature_paths(cache, 64)
    assert maps_path.stat().st_size == 5 * feature_dim(64) * 2 and box_path.stat().st_size == 5 * 5 * 8
    # And what is read back is what extraction gives, with each image's letterbox
    read = features_read(cache, [4, 1], input_size=64)
    direct = extract_features(backbone, [images[4], images[1]], input_size=64)
    for got, want in zip(read.maps, direct.maps, strict=True):
        assert got.shape == want.shape and got.dtype == torch.float16
        assert torch.equal(got, want)
    assert read.boxes_in == direct.boxes_in


def test_a_shrunk_image_keeps_the_letterbox_of_its_full_size(tmp_path):
    # Given an image decoded at half its size (as a JPEG draft or a shrink does)
    full = np.random.default_rng(1).integers(0, 256, size=(120, 200, 3), dtype=np.uint8)
    half = full[::2, ::2]
    cache = tmp_path / "images_32.u8"
    features_ensure(cache, 1, lambda _row: (half, (200, 120)), load_mobilenet_v2(), input_size=64)
    # Then its letterbox maps the full image's pixels into the input: 200 px wide fill 64
    (placed,) = features_read(cache, [0], input_size=64).boxes_in
    assert (placed.width, placed.height) == (200, 120) and placed.scale * 200 == 64
