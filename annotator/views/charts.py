"""The learning curve as SVG geometry, drawn by the server."""

from __future__ import annotations

import math
from typing import Any


def _nice_step(span: float, ticks: int) -> float:
    """The smallest of 1, 2, 5 × 10^k that cuts ``span`` into at most ``ticks`` steps."""
    raw = max(span, 1e-9) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def learning_curve_chart(points: list[dict[str, Any]], *, width: int = 560, height: int = 240) -> dict[str, Any]:
    """SVG geometry for the learning curve: validation accuracy (y) against labels (x), one point per
    ``learning_curve`` entry, with its 95% interval as an error bar (``bar``: an SVG path,
    ``""`` without one); the y axis starts at a round value below the lowest accuracy or interval."""
    left, right, top, bottom = 48, 16, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max([p["n_labels"] for p in points], default=0) or 10
    x_step = max(_nice_step(most, 5), 1)
    x_max = max(x_step * math.ceil(most / x_step), x_step)
    lowest = min([_low(p) for p in points], default=0.9)
    y_step = 0.1 if lowest >= 0.5 else 0.2
    y_min = round(math.floor(min(max(lowest, 0.0), 0.9) / y_step + 1e-9) * y_step, 2)

    def x(n: float) -> float:
        return round(left + n / x_max * plot_w, 1)

    def y(accuracy: float) -> float:
        share = (min(max(accuracy, y_min), 1.0) - y_min) / (1.0 - y_min)
        return round(top + (1 - share) * plot_h, 1)

    def bar(p: dict[str, Any]) -> str:
        if p.get("val_accuracy_low") is None or p.get("val_accuracy_high") is None:
            return ""
        cx, top_y, low_y = x(p["n_labels"]), y(p["val_accuracy_high"]), y(p["val_accuracy_low"])
        return f"M{cx - 4:.1f},{top_y}h8M{cx},{top_y}V{low_y}M{cx - 4:.1f},{low_y}h8"

    dots = [{**p, "x": x(p["n_labels"]), "y": y(p["val_accuracy"]), "bar": bar(p)} for p in points]
    n_x_ticks = round(x_max / x_step)
    n_y_ticks = round((1.0 - y_min) / y_step)
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "dots": dots,
        "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "x_ticks": [{"x": x(i * x_step), "label": f"{i * x_step:g}"} for i in range(n_x_ticks + 1)],
        "y_ticks": [{"y": y(y_min + i * y_step), "label": f"{y_min + i * y_step:.1f}"} for i in range(n_y_ticks + 1)],
        "numbers": ",".join(str(p["number"]) for p in points),
    }


def _low(point: dict[str, Any]) -> float:
    """The lowest value a learning-curve point draws: its interval's lower end, else its accuracy."""
    low = point.get("val_accuracy_low")
    return point["val_accuracy"] if low is None else min(low, point["val_accuracy"])


#: The most classes drawn as a matrix; a project with more lists its most frequent confusions.
MATRIX_MAX_CLASSES = 25
#: How many confusions that list shows.
TOP_CONFUSIONS = 20


def confusion_table(confusion: dict[str, Any], *, multi_label: bool) -> dict[str, Any]:
    """The page's view of ``model_version_confusion``: for single-label projects with at most
    ``MATRIX_MAX_CLASSES`` classes, ``rows`` (one per given class: ``name``, ``cells`` (one per
    predicted class: ``predicted``, ``n``, ``share`` of the row, ``diagonal``), ``precision``,
    ``recall``, ``support``), else ``top``: the ``TOP_CONFUSIONS`` largest off-diagonal cells
    (``given``, ``predicted``, ``n``). Multi-label projects get ``per_class`` only."""
    names = confusion["classes"]
    table: dict[str, Any] = {"n": confusion["n"], "classes": names, "per_class": confusion["per_class"]}
    if multi_label:
        return table
    counts = {(given, predicted): n for given, predicted, n in confusion["cells"]}
    if len(names) > MATRIX_MAX_CLASSES:
        off = sorted(((n, g, p) for (g, p), n in counts.items() if g != p), key=lambda c: (-c[0], c[1], c[2]))
        table["top"] = [{"given": names[g], "predicted": names[p], "n": n} for n, g, p in off[:TOP_CONFUSIONS]]
        return table
    rows = []
    for g, stats in enumerate(confusion["per_class"]):
        total = sum(counts.get((g, p), 0) for p in range(len(names)))
        cells = [
            {
                "predicted": names[p],
                "n": counts.get((g, p), 0),
                "share": counts.get((g, p), 0) / total if total else 0.0,
                "diagonal": g == p,
            }
            for p in range(len(names))
        ]
        rows.append({**stats, "cells": cells})
    table["rows"] = rows
    return table
