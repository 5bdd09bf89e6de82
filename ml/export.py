"""Take the model away: a served model as one network from images to class probabilities.

``image_classifier`` wraps what the worker serves (the ``cnn`` network, or a frozen
backbone plus the head trained on its embeddings) into a single module taking
(N, 3, S, S) float32 RGB in [0, 1], with the resizing and normalisation inside, and
returning (N, C) probabilities (softmax, or a sigmoid per class for a multi-label
model); ``export_torchscript`` and ``export_onnx``
write it to files that run with only ``torch`` or only ``onnxruntime``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.data import PAD_VALUE
from ml.embeddings import Backbone, embed_side
from ml.mobilenet import IMAGENET_MEAN, IMAGENET_STD, MobileNetV2
from ml.models.cnn import MEAN, STD, feature_head
from ml.models.files import write_path_atomically
from ml.models.predict import probabilities

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
ONNX_OPSET = 17
FAMILIES = ("cnn", "pretrained", "torchscript")


class Resize(nn.Module):
    """(B, C, S, S) -> (B, C, T, T): the served bilinear (antialiased) resize as a fixed linear map.

    PyTorch's antialiased resize is separable, so it equals ``R @ x @ R.T`` with one
    (T, S) matrix ``R``: an (S, S) identity image resized to (T, S). The two matrix
    products export to ONNX as plain MatMul nodes and give the same numbers in torch and
    onnxruntime (ONNX Resize has no exact equivalent of PyTorch's antialiasing).
    """

    def __init__(self, size_in: int, size_out: int) -> None:
        super().__init__()
        self.matrix: torch.Tensor
        identity = torch.eye(size_in).reshape(1, 1, size_in, size_in)
        resized = nn.functional.interpolate(identity, size=(size_out, size_in), mode="bilinear", antialias=True)
        self.register_buffer("matrix", resized.reshape(size_out, size_in).contiguous())  # R @ I = R

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.matrix, x), self.matrix.t())


class ImageClassifier(nn.Module):
    """(B, 3, S, S) float32 RGB in [0, 1] -> (B, C) float32 probabilities.

    Resize (optional), ``(x - mean) / std`` per channel, ``features`` ((B, D) or a
    (B, D, h, w) map, averaged over h, w), then ``head`` to logits and softmax (or, with
    ``multi_label``, a sigmoid per class).
    """

    def __init__(
        self,
        features: nn.Module,
        head: nn.Module,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        resize: nn.Module | None = None,
        multi_label: bool = False,
    ) -> None:
        super().__init__()
        self.multi_label = multi_label
        self.resize = resize if resize is not None else nn.Identity()
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (self.resize(x) - self.mean) / self.std
        y = self.features(x)
        if y.dim() == 4:
            y = y.mean(dim=(2, 3))
        return probabilities(self.head(y), multi_label=self.multi_label)


def image_classifier(
    model: nn.Module,
    *,
    family: str,
    input_size: int,
    backbone: Backbone | None = None,
    multi_label: bool = False,
) -> ImageClassifier:
    """The served model as one module from images in [0, 1] to class probabilities.

    The modules are shared, not copied, and put in eval mode.

    Parameters
    ----------
    model : nn.Module
        What ``ml.models.files.load_model`` gives for a version: the whole CNN for ``cnn``, the
        head on embeddings for ``pretrained`` and ``torchscript``.
    family : {"cnn", "pretrained", "torchscript"}
    input_size : int
        S, the side of the cached images the model was trained on.
    backbone : Backbone, optional
        From ``ml.embeddings.load_backbone``; needed by ``pretrained`` and ``torchscript``.
    multi_label : bool
        A sigmoid per class instead of a softmax (what a multi-label project's model serves).

    Returns
    -------
    ImageClassifier
        (B, 3, S, S) float32 RGB in [0, 1] -> (B, C) float32 probabilities, in eval mode.

    Raises
    ------
    ValueError
        For an unknown family, a ``cnn`` model without ``features`` and ``head``, or a missing
        backbone.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; valid: {', '.join(FAMILIES)}")
    if family == "cnn":
        split = feature_head(model)
        if split is None:
            raise ValueError("a cnn model needs features and head children (ml.models.cnn.build_model)")
        wrapped = ImageClassifier(*split, mean=(MEAN,) * 3, std=(STD,) * 3, multi_label=multi_label)
    else:
        if backbone is None:
            raise ValueError(f"the {family} family needs its backbone (ml.embeddings.load_backbone)")
        side = embed_side(input_size)
        features = backbone.module
        if family == "pretrained":
            assert isinstance(backbone.module, MobileNetV2)
            features = backbone.module.features
        wrapped = ImageClassifier(
            features,
            model,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            resize=Resize(input_size, side) if side != input_size else None,
            multi_label=multi_label,
        )
    return wrapped.eval()


def preprocessing(*, family: str, input_size: int) -> dict[str, Any]:
    """How images become the exported model's input, as plain JSON-ready data.

    The model takes (N, 3, S, S) float32 RGB in [0, 1] (uint8 / 255); resizing to the
    backbone's side and the normalisation listed here already happen inside it.

    Parameters
    ----------
    family : {"cnn", "pretrained", "torchscript"}
    input_size : int
        S.

    Returns
    -------
    dict
        The input name and shape ``["N", 3, S, S]``, layout, dtype and value range, the letterbox
        resize, the normalisation, the backbone's input side (None for ``cnn``) and the output.

    Raises
    ------
    ValueError
        For an unknown family.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; valid: {', '.join(FAMILIES)}")
    mean, std = ((MEAN,) * 3, (STD,) * 3) if family == "cnn" else (IMAGENET_MEAN, IMAGENET_STD)
    return {
        "model_family": family,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": ["N", 3, input_size, input_size],
        "input_size": input_size,
        "channels": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "resize": {
            "method": "letterbox",
            "interpolation": "bilinear",
            "pad_value": [PAD_VALUE] * 3,
            "description": (
                f"apply EXIF orientation, composite transparency on white, resize keeping the aspect ratio "
                f"so the longer side is {input_size} px (bilinear), centre on a grey {input_size}x{input_size} "
                f"square of value {PAD_VALUE}"
            ),
        },
        "normalization": {
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
            "applied_inside_model": True,
        },
        "backbone_input_size": None if family == "cnn" else embed_side(input_size),
        "output": "softmax",
    }


def example_input(input_size: int, *, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random images to trace and export with, the same for the same ``seed``.

    Parameters
    ----------
    input_size : int
        S.
    batch : int
        N.
    seed : int

    Returns
    -------
    (N, 3, S, S) float32 tensor
        Uniform in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, input_size, input_size, generator=generator)


def trace(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``model`` in eval mode, traced; a ScriptModule is returned as it is.

    Trace once and hand the result to both exporters to save the second trace.

    Parameters
    ----------
    model : nn.Module
        (N, 3, S, S) -> (N, C), e.g. an ``ImageClassifier``; put in eval mode.
    example : (N, 3, S, S) float32 tensor

    Returns
    -------
    torch.jit.ScriptModule
        (B, 3, S, S) -> (B, C) for any batch size B.
    """
    if isinstance(model, torch.jit.ScriptModule):
        return model
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.trace(model, (example,), check_trace=False)


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace ``model`` (eval mode), or take it traced, and save it to ``path`` atomically.

    The file loads with ``torch.jit.load``. (torch marks TorchScript deprecated but still traces
    and loads it; that warning is muted here.)

    Parameters
    ----------
    model : nn.Module or torch.jit.ScriptModule
        (N, 3, S, S) -> (N, C).
    example : (N, 3, S, S) float32 tensor
        What to trace with.
    path : Path

    Returns
    -------
    Path
        ``path``; its module maps any (B, 3, S, S) batch to (B, C).
    """
    traced = trace(model, example)
    return write_path_atomically(Path(path), lambda tmp: traced.save(str(tmp)))


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    opset: int = ONNX_OPSET,
    output_names: Sequence[str] = (OUTPUT_NAME,),
) -> Path:
    """Export ``model`` (eval mode) as ONNX to ``path`` atomically, with a dynamic batch axis.

    Uses torch's TorchScript-based exporter (``dynamo=False``; the newer one would need
    ``onnxscript``) on the traced model: tracing first lets a TorchScript backbone inside
    ``model`` export too.

    Parameters
    ----------
    model : nn.Module or torch.jit.ScriptModule
        (N, 3, S, S) -> (N, C).
    example : (N, 3, S, S) float32 tensor
        What to trace with.
    path : Path
    opset : int
        The ONNX opset.
    output_names : sequence of str
        A name for each output of ``model``, each with a dynamic first (batch) axis.

    Returns
    -------
    Path
        ``path``: input ``images`` (N, 3, S, S) float32, output ``probabilities`` (N, C) float32.
    """
    traced = trace(model, example)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message="no signature found", category=UserWarning)  # traced input
            torch.onnx.export(
                traced,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(output_names),
                dynamic_axes={name: {0: "N"} for name in (INPUT_NAME, *output_names)},
            )

    return write_path_atomically(Path(path), write)


#: How to run the exported files; the README.txt of a downloaded bundle.
USAGE = '''\
Running the exported model

model.pt is TorchScript (needs only torch), model.onnx is ONNX (needs only onnxruntime);
both map a float32 batch (N, 3, S, S) of RGB values in [0, 1] to (N, C) class
probabilities (softmax; with "multi_label": true in model.json a sigmoid per class, and
the classes at 0.5 or above apply). Resizing to the backbone and normalisation happen inside
the model. model.json lists the classes (output order) and the preprocessing; S is its
preprocessing.input_size. Prepare images as the tool did (Pillow and NumPy):

    import json
    import numpy as np
    from PIL import Image, ImageOps

    card = json.load(open("model.json"))
    size = card["preprocessing"]["input_size"]

    def load(path):
        """Letterbox: longer side to `size` (bilinear), centred on grey 128; (3, S, S) float32 in [0, 1]."""
        img = Image.open(path)
        img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, as the tool does
        img = ImageOps.exif_transpose(img).convert("RGB")  # the tool puts transparent pixels on white first
        scale = size / max(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new_size, Image.BILINEAR, reducing_gap=3.0)
        canvas = Image.new("RGB", (size, size), (128, 128, 128))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        return np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / 255.0

    x = np.stack([load("image.jpg")])  # (N, 3, S, S)

With torch only:

    import torch
    model = torch.jit.load("model.pt")
    probs = model(torch.from_numpy(x)).detach().numpy()  # (N, C)

With onnxruntime only:

    import onnxruntime as ort
    session = ort.InferenceSession("model.onnx")
    probs = session.run(["probabilities"], {"images": x})[0]  # (N, C)

    print(card["classes"][int(probs[0].argmax())], float(probs[0].max()))
'''
