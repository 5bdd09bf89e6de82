"""Figures shown in several places (pages, the admin, the model download), each formatted once here;
``static/js/figures.js`` is the pages' scripts' twin of these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from django import template

register = template.Library()


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@register.filter(name="accuracy")
def accuracy_text(metrics: Mapping[str, Any] | None) -> str:
    """A version's accuracy estimate from its ``metrics`` (or a learning-curve point): ``"0.78 ± 0.09
    (66 labels)"``, ± half its 95% interval and the count the labels it rests on; ``"0.78"`` for a
    version without an interval; ``"–"`` without an estimate. A detector's: ``"mAP@0.5 0.82 (40
    held-out images)"``."""
    metrics = metrics or {}
    if "val_map50" in metrics:  # a detector's: mAP by pycocotools on held-out images
        found, n = metrics.get("val_map50"), metrics.get("val_n")
        if not _number(found):
            return "–"
        images = f" ({n} held-out image{'' if n == 1 else 's'})" if _number(n) else ""
        return f"mAP@0.5 {found:.2f}{images}"
    value, low, high, n = (metrics.get(k) for k in ("val_accuracy", "val_accuracy_low", "val_accuracy_high", "val_n"))
    if not _number(value):
        return "–"
    if not (_number(low) and _number(high)):
        return f"{value:.2f}"
    text = f"{value:.2f} ± {(high - low) / 2:.2f}"
    return f"{text} ({n} label{'' if n == 1 else 's'})" if _number(n) else text
