"""Take the detector away: a box project's served detector (the frozen MobileNetV2 and the CenterNet
head trained on its maps) as one network from letterboxed images to each image's best peaks.

``image_detector`` takes (N, 3, S, S) float32 RGB in [0, 1], already letterboxed to the square
input as ``centernet.letterbox`` does it (``letterbox_numpy`` here, without torch), and returns
fixed-shape tensors that export cleanly (``ml.export.export_torchscript`` and ``export_onnx``):
``boxes`` (N, K, 4) corners in input pixels, ``scores`` (N, K), ``classes`` (N, K) int64. What
varies per image stays outside, in ``postprocess`` (plain NumPy): the score cut, the mapping back
out of the letterbox and non-maximum suppression per class. Together they give the served
detections (``centernet.detect``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.detection.centernet import FEATURE_LAYERS, STRIDE, CenterNetHead
from ml.detection.loop import MAX_PREBOXES, MIN_PREBOX_SCORE
from ml.export import INPUT_NAME
from ml.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2

#: The peaks each image's outputs hold, best first.
TOP_K = 100
#: The exported model's outputs, in order.
OUTPUT_NAMES = ("boxes", "scores", "classes")
#: ``centernet.detect``'s defaults, which the served pre-boxes use before calibration.
MIN_SCORE = 0.01
IOU_THRESHOLD = 0.6


class ImageDetector(nn.Module):
    """(N, 3, S, S) float32 letterboxed RGB in [0, 1] -> boxes (N, K, 4), scores (N, K), classes (N, K).

    ImageNet normalisation, the backbone up to its last feature layer, the three maps rounded to
    float16 and back (as ``extract_features`` keeps them, so the numbers are the served ones), the
    head, a sigmoid, the 3 x 3 peak filter, and each image's ``top_k`` best (class, cell) peaks:
    ``x0, y0, x1, y1`` in input pixels, the peak's probability and its class position.
    """

    def __init__(self, features: nn.Sequential, head: CenterNetHead, *, input_size: int, top_k: int) -> None:
        super().__init__()
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))
        self.features = features
        self.head = head
        self.grid = input_size // STRIDE
        self.top_k = top_k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = (x - self.mean) / self.std
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in FEATURE_LAYERS:
                maps.append(x.half().float())  # the served maps are float16
        heat, box = self.head(*maps)
        probs = torch.sigmoid(heat)
        probs = probs * (F.max_pool2d(probs, 3, stride=1, padding=1) == probs)
        cells = self.grid * self.grid
        scores, index = probs.flatten(1).topk(self.top_k, dim=1)  # (N, K) over (class, cell)
        classes = torch.div(index, cells, rounding_mode="floor")
        cell = index - classes * cells
        iy = torch.div(cell, self.grid, rounding_mode="floor")
        ix = cell - iy * self.grid
        flat = box.flatten(2)  # (N, 4, G * G)
        w, h, dx, dy = (flat[:, j].gather(1, cell) for j in range(4))
        cx, cy = ix.to(flat.dtype) + dx, iy.to(flat.dtype) + dy
        w, h = w.exp(), h.exp()
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=2) * STRIDE
        return boxes, scores, classes


def image_detector(head: CenterNetHead, backbone: MobileNetV2, input_size: int, *, top_k: int = TOP_K) -> ImageDetector:
    """The served detector as one module (see ``ImageDetector``), in eval mode; ``head`` and the
    backbone's layers are shared, not copied. K is ``top_k``, or every (class, cell) pair when there
    are fewer. Raises ``ValueError`` unless ``input_size`` is a multiple of 32."""
    if input_size % 32:
        raise ValueError("input_size must be a multiple of 32")
    features = nn.Sequential(*list(backbone.features)[: FEATURE_LAYERS[-1] + 1])
    grid = input_size // STRIDE
    k = min(top_k, head.heat.out_channels * grid * grid)
    return ImageDetector(features, head, input_size=input_size, top_k=k).eval()


def load_head(path: Path) -> tuple[CenterNetHead, dict[str, Any]]:
    """The head a box project's round saved (``{"state_dict", "meta", "n_classes"}``), in eval mode
    on the CPU, and its meta (``kind``, ``detector``, ``input_size``, ``classes``)."""
    saved = torch.load(Path(path), map_location="cpu", weights_only=True)
    head = CenterNetHead(int(saved["n_classes"]))
    head.load_state_dict(saved["state_dict"])
    return head.eval(), dict(saved["meta"])


def letterbox_numpy(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, float, int, int]]:
    """``image`` (H, W, 3) uint8 scaled to fit a (size, size) square and centred on grey 0.5, as the
    tool does it (torch's bilinear resize without antialiasing, ``ml.detection.centernet.letterbox``):
    (3, size, size) float32 in [0, 1], and ``(scale, pad_x, pad_y, width, height)`` for ``postprocess``."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
        low = pos.astype(np.int64)
        return low, np.minimum(low + 1, n_in - 1), pos - low

    (y0, y1, fy), (x0, x1, fx) = taps(height, new_h), taps(width, new_w)
    pixels = image.astype(np.float64) / 255
    rows = pixels[y0] * (1 - fy)[:, None, None] + pixels[y1] * fy[:, None, None]
    resized = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    pad_y, pad_x = (size - new_h) // 2, (size - new_w) // 2
    canvas = np.full((3, size, size), 0.5, dtype=np.float32)
    canvas[:, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized.transpose(2, 0, 1)
    return canvas, (scale, float(pad_x), float(pad_y), width, height)


def postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    letterbox_info: Sequence[float],
    min_score: float = 0.01,
    iou: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections from its model outputs (``boxes`` (K, 4) input pixels, ``scores`` (K,),
    ``classes`` (K,)) and ``letterbox_info`` (scale, pad_x, pad_y, width, height): the peaks at
    ``min_score`` or above, mapped to the image's pixels and cut to it, then greedy NMS per class
    (IoU above ``iou``). Returns boxes (M, 4) ``x0, y0, x1, y1``, scores (M,), classes (M,), best first."""
    scale, pad_x, pad_y, width, height = letterbox_info
    keep = scores >= min_score
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    boxes = ((boxes - [pad_x, pad_y, pad_x, pad_y]) / scale).clip(0, [width, height, width, height])
    order = np.argsort(-scores, kind="stable")
    moved = (boxes + classes[:, None] * (boxes.max(initial=0) + 1))[order]  # classes never overlap
    inter = np.minimum(moved[:, None, 2:], moved[None, :, 2:]) - np.maximum(moved[:, None, :2], moved[None, :, :2])
    inter = inter.clip(0).prod(axis=2)
    area = (moved[:, 2:] - moved[:, :2]).clip(0).prod(axis=1)
    union = area[:, None] + area[None, :] - inter
    overlaps = np.where(union > 0, inter / np.maximum(union, 1e-12), 0) > iou
    suppressed, kept = np.zeros(len(order), dtype=bool), []
    for i in range(len(order)):
        if not suppressed[i]:
            kept.append(order[i])
            suppressed |= overlaps[i]
    return boxes[kept], scores[kept], classes[kept]


def detector_card(*, input_size: int, top_k: int) -> dict[str, Any]:
    """What the exported detector takes and returns and how its outputs become detections, as plain
    JSON-ready data for the model card."""
    return {
        "input_name": INPUT_NAME,
        "input_shape": ["N", 3, input_size, input_size],
        "input_size": input_size,
        "channels": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "resize": {
            "method": "letterbox",
            "interpolation": "bilinear (torch, align_corners=False, no antialiasing)",
            "pad_value": [0.5] * 3,
            "description": (
                f"apply EXIF orientation, scale = {input_size} / max(height, width), resize to "
                f"(round(height * scale), round(width * scale)), centre on a grey {input_size}x{input_size} "
                "square of value 0.5 at pad_x = (S - new_width) // 2, pad_y = (S - new_height) // 2"
            ),
        },
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "applied_inside_model": True},
        "outputs": {
            "boxes": {"shape": ["N", top_k, 4], "dtype": "float32", "form": "x0, y0, x1, y1 in input pixels"},
            "scores": {"shape": ["N", top_k], "dtype": "float32", "form": "peak probability, best first"},
            "classes": {"shape": ["N", top_k], "dtype": "int64", "form": "position in classes"},
        },
        "postprocessing": {
            "min_score": MIN_SCORE,
            "iou_threshold": IOU_THRESHOLD,
            "preboxes": {"top_k": MAX_PREBOXES, "min_score": MIN_PREBOX_SCORE},
            "description": (
                "per image: keep scores >= min_score; subtract (pad_x, pad_y) from the corners, divide by "
                "scale, clip to the image; greedy non-maximum suppression per class at IoU > iou_threshold "
                "(postprocess in README.txt); the tool's pre-boxes are the first preboxes.top_k peaks at "
                "preboxes.min_score, shown with calibrated confidences"
            ),
        },
    }


#: How to run the exported detector, the tail of a box project's README.txt; see ``usage``.
_USAGE = """\
Running the exported detector

model.pt is TorchScript (needs only torch), model.onnx is ONNX (needs only onnxruntime); both
take a float32 batch (N, 3, S, S) of RGB values in [0, 1], each image letterboxed to the square
input (S = "input_size" in model.json), and return each image's {top_k} best peaks, best first:
"boxes" (N, K, 4) x0, y0, x1, y1 in input pixels, "scores" (N, K) and "classes" (N, K) int64
(positions in model.json's "classes"). Normalisation happens inside the model. The score cut,
the mapping back to the image's pixels and non-maximum suppression per class are yours (NumPy):

    import json
    from collections.abc import Sequence

    import numpy as np
    from PIL import Image, ImageOps

    card = json.load(open("model.json"))
    size = card["input_size"]

{letterbox}
{postprocess}
    image = np.asarray(ImageOps.exif_transpose(Image.open("image.jpg")).convert("RGB"))
    x, info = letterbox_numpy(image, size)
    x = x[None]  # (1, 3, S, S)

(The tool decodes an image larger than 2 S shrunk to 2 S on its longer side first, with Pillow's
bilinear resize, and keeps info's scale for the full size: its pixels, and so its scores, differ
from these by that resampling; from the same letterboxed pixels the numbers are the same.)

With torch only:

    import torch
    boxes, scores, classes = (t.numpy() for t in torch.jit.load("model.pt")(torch.from_numpy(x)))

With onnxruntime only:

    import onnxruntime as ort
    boxes, scores, classes = ort.InferenceSession("model.onnx").run(None, {{"images": x}})

    for box, score, c in zip(*postprocess(boxes[0], scores[0], classes[0], info)):
        print(card["classes"][c], round(float(score), 3), box.round(1))  # x0, y0, x1, y1 in image pixels

With the defaults (min_score {min_score}, IoU {iou}) these are the detections the tool measures
its mAP on; its pre-boxes are the first {preboxes} peaks with min_score {prebox_score}, and the
confidences it shows are these scores calibrated on held-out images.
"""


def usage(top_k: int = TOP_K) -> str:
    """How to run the exported files (the README's text), with the source of ``letterbox_numpy``
    and ``postprocess`` written in."""

    def indented(function: Any) -> str:
        lines = inspect.getsource(function).splitlines(keepends=True)
        return "".join(f"    {line}" if line.strip() else line for line in lines)

    return _USAGE.format(
        top_k=top_k,
        letterbox=indented(letterbox_numpy),
        postprocess=indented(postprocess),
        min_score=MIN_SCORE,
        iou=IOU_THRESHOLD,
        preboxes=MAX_PREBOXES,
        prebox_score=MIN_PREBOX_SCORE,
    )
