"""``manage.py bench_label_errors`` writes the issue's JSON schema with sane figures."""

from __future__ import annotations

import json

from django.core.management import call_command


def test_bench_label_errors_json(tmp_path, capsys):
    out = tmp_path / "le.json"
    call_command(
        "bench_label_errors",
        "--dataset",
        "digits",
        "--noise",
        "0.1",
        "--limit",
        "240",
        "--folds",
        "2",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    expected = {"dataset", "noise", "n_labeled", "n_flipped", "n_flagged", "precision", "recall", "precision_at_k"}
    assert expected <= set(result)
    assert (result["dataset"], result["noise"], result["n_labeled"], result["n_flipped"]) == ("digits", 0.1, 240, 24)
    assert 0 <= result["precision"] <= 1 and result["recall"] >= 0.5
    assert "precision" in capsys.readouterr().out


def test_bench_label_errors_multi_label(tmp_path):
    out = tmp_path / "ml.json"
    call_command(
        "bench_label_errors",
        "--dataset",
        "digits",
        "--noise",
        "0.1",
        "--limit",
        "200",
        "--folds",
        "2",
        "--multi-label",
        "3",
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    assert (result["noise_kind"], result["n_labeled"], result["n_flipped"]) == ("multi_label", 200, 20)
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
