"""``ml.detection.export``: the detector taken away as TorchScript and ONNX gives, after the
documented post-processing, the detections the tool serves (``centernet.detect``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ml.detection.centernet import CenterNetHead, detect, encode_targets, extract_features, letterbox, train_head
from ml.detection.export import (
    OUTPUT_NAMES,
    image_detector,
    letterbox_numpy,
    load_head,
    postprocess,
    usage,
)
from ml.evaluation.scenes import draw_scene
from ml.export import INPUT_NAME, example_input, export_onnx, export_torchscript, trace
from ml.mobilenet import load_mobilenet_v2

SIZE = 96


@pytest.fixture(scope="module")
def trained():
    """A head trained briefly on 8 scenes (the numbers, not the accuracy, are under test), the
    backbone, and 4 scenes of other sizes to detect on."""
    rng = np.random.default_rng(3)
    backbone = load_mobilenet_v2()
    scenes = [draw_scene(80, rng, max_objects=3) for _ in range(8)]
    features = extract_features(backbone, [s.pixels for s in scenes], input_size=SIZE)
    targets = encode_targets(
        [s.boxes for s in scenes], [s.labels for s in scenes], features.boxes_in, input_size=SIZE, n_classes=6
    )
    head = train_head(features, targets, 6, epochs=3, seed=0)
    wide = draw_scene(120, rng, max_objects=3).pixels[:70]  # 120 x 70: grey bars above and below
    tall = draw_scene(100, rng, max_objects=3).pixels[:, 10:65]  # 55 x 100: bars left and right
    images = [wide, tall, draw_scene(64, rng).pixels, draw_scene(150, rng).pixels]
    return head, backbone, images


def corners(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def test_the_exported_detector_gives_the_served_detections(trained, tmp_path):
    # Given the served detections of 4 images of various shapes, at a low score cut so there are many
    head, backbone, images = trained
    served = detect(head, extract_features(backbone, images, input_size=SIZE), min_score=0.05)
    assert sum(len(d.scores) for d in served) >= 8
    # When the detector is exported to TorchScript and ONNX and the files run on the letterboxed images
    network = image_detector(head, backbone, SIZE)
    example = example_input(SIZE)
    traced = trace(network, example)
    export_torchscript(traced, example, tmp_path / "model.pt")
    export_onnx(traced, example, tmp_path / "model.onnx", output_names=OUTPUT_NAMES)
    placed = [letterbox(image, SIZE) for image in images]
    x = np.stack([pixels for pixels, _ in placed])
    with torch.no_grad():
        from_ts = [t.numpy() for t in torch.jit.load(str(tmp_path / "model.pt"))(torch.from_numpy(x))]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    from_onnx = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
    # Then both give fixed shapes: K = 100 peaks per image
    for boxes, scores, classes in (from_ts, from_onnx):
        assert boxes.shape == (4, 100, 4) and scores.shape == classes.shape == (4, 100)
        assert classes.dtype == np.int64 and (np.diff(scores, axis=1) <= 0).all()
        # And after the post-processing, the served boxes, scores and classes, image by image
        for i, (found, (_, where)) in enumerate(zip(served, placed, strict=True)):
            info = dataclasses.astuple(where)
            got_boxes, got_scores, got_classes = postprocess(boxes[i], scores[i], classes[i], info, min_score=0.05)
            np.testing.assert_array_equal(got_classes, found.labels)
            np.testing.assert_allclose(got_scores, found.scores, atol=1e-4)
            np.testing.assert_allclose(got_boxes, corners(found.boxes), atol=1e-3)


def test_the_numpy_letterbox_is_the_tools():
    rng = np.random.default_rng(0)
    for shape in [(70, 120, 3), (100, 55, 3), (40, 40, 3), (300, 90, 3)]:
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        pixels, info = letterbox_numpy(image, SIZE)
        expected, where = letterbox(image, SIZE)
        assert info == dataclasses.astuple(where)
        np.testing.assert_allclose(pixels, expected, atol=1e-5)


def test_postprocess_maps_out_of_the_letterbox_and_suppresses_per_class():
    # Given peaks in input pixels of a 200 x 100 image letterboxed to 100 (scale 0.5, 25 px bars)
    boxes = np.array([[10, 30, 50, 60], [12, 30, 50, 62], [10, 30, 50, 60], [-20, 20, 30, 40], [0, 0, 5, 5]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.001])
    classes = np.array([0, 0, 1, 0, 0])
    found_boxes, found_scores, found_classes = postprocess(boxes, scores, classes, (0.5, 0.0, 25.0, 200, 100))
    # Then the weak peak is cut, the overlapping one of the same class suppressed, the other class's
    # kept, and boxes are in image pixels cut to the image
    assert found_scores.tolist() == [0.9, 0.7, 0.6] and found_classes.tolist() == [0, 1, 0]
    np.testing.assert_allclose(found_boxes, [[20, 10, 100, 70], [20, 10, 100, 70], [0, 0, 60, 30]])
    empty = postprocess(boxes, scores, classes, (0.5, 0.0, 25.0, 200, 100), min_score=0.95)
    assert [len(a) for a in empty] == [0, 0, 0]


def test_a_saved_head_loads_and_the_readme_carries_the_reference_code(tmp_path):
    head = CenterNetHead(3)
    meta = {"kind": "boxes", "detector": "centernet", "input_size": 64, "classes": ["a", "b", "c"]}
    torch.save({"state_dict": head.state_dict(), "meta": meta, "n_classes": 3}, tmp_path / "v1.pt")
    loaded, got = load_head(tmp_path / "v1.pt")
    assert got == meta and not loaded.training and loaded.heat.out_channels == 3
    # A tiny input has fewer (class, cell) pairs than 100: K is all of them
    assert image_detector(loaded, load_mobilenet_v2(), 32).top_k == 3 * 4 * 4
    with pytest.raises(ValueError, match="multiple of 32"):
        image_detector(loaded, load_mobilenet_v2(), 48)
    text = usage()
    assert "def postprocess(" in text and "def letterbox_numpy(" in text and "onnxruntime" in text
