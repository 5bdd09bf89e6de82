"""``manage.py simulate`` on an ImageFolder with the pretrained family: the JSON schema and the plot,
from the product's cold start (the default) and from class-balanced labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image


def make_imagefolder(root, per_class: int = 16) -> None:
    """Two easy classes: dark and bright squares with a little noise, 40x30 JPEGs."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 215)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(level + rng.normal(0, 25, size=(30, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")


def test_simulate_writes_the_documented_json_and_a_plot(tmp_path):
    make_imagefolder(tmp_path / "data")
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    call_command(
        "simulate",
        "--dataset", str(tmp_path / "data"),
        "--strategies", "random,entropy",
        "--model", "pretrained",
        "--initial", "4", "--batch", "4", "--budget", "4", "--repeats", "1",
        "--json", str(out), "--plot", str(png),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert set(report) == {"dataset", "model", "n_pool", "n_test", "strategies"}
    assert report["model"] == "pretrained" and report["n_pool"] + report["n_test"] == 32
    for summary in report["strategies"].values():
        assert set(summary) == {
            "curve", "labels_to_accuracy", "auc", "estimate_curve", "estimate_mae",
            "classes_unlabeled_at_50", "prelabels",
        }  # fmt: skip
        assert [point[0] for point in summary["curve"]] == [4, 8]
        assert [point[0] for point in summary["estimate_curve"]] == [4, 8]
        assert summary["estimate_mae"] is None  # measured from 50 labels on
        assert summary["prelabels"]["served"] == 4
        assert set(summary["labels_to_accuracy"]) == {"0.90", "0.95", "0.97", "0.98"}
        # An easy problem: measured 1.0 at every point, both strategies (a test error costs 1/6 or so)
        assert summary["curve"][-1][1] == 1.0
    assert png.stat().st_size > 1000


def test_simulate_from_balanced_labels_and_a_bad_choice(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=8)
    out = tmp_path / "out.json"
    call_command(
        "simulate", "--dataset", str(tmp_path / "data"), "--strategies", "margin", "--model", "pretrained",
        "--initial", "4", "--batch", "2", "--budget", "2", "--repeats", "1", "--initial-selection", "balanced",
        "--json", str(out),
    )  # fmt: skip
    assert [point[0] for point in json.loads(out.read_text())["strategies"]["margin"]["curve"]] == [4, 6]
    with pytest.raises(CommandError, match="coldstart"):
        call_command("simulate", "--dataset", str(tmp_path / "data"), "--initial-selection", "oracle")
