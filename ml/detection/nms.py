"""Non-maximum suppression with plain torch ops (torchvision is not available beside this torch).

Boxes here are corners ``x0, y0, x1, y1`` (N, 4), the form detectors predict; ``ml.boxes`` holds
the ``x, y, w, h`` form that annotations use.
"""

from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) intersection over union of corner boxes ``a`` (N, 4) and ``b`` (M, 4); 0 without area."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept, highest score first: each box suppresses the lower-scored ones that
    overlap it more than ``iou_threshold``. ``boxes`` (N, 4) corners, ``scores`` (N,); returns (K,) int64.

    Greedy, as torchvision's: the IoU matrix once, then one pass over the boxes in score order
    (O(N²) memory; detectors keep N to a few thousand before this)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = box_iou(boxes[order], boxes[order]) > iou_threshold
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """``nms`` within each class (``classes`` (N,) int): boxes of different classes never suppress
    each other. Each class's boxes are moved apart by an offset larger than every box, so one pass
    does all classes. Returns (K,) int64 indices, highest score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    offsets = classes.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets, scores, iou_threshold)
