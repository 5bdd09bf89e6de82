"""``manage.py make_shapes``: writes the generated shapes into a new folder, never over an old one."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_the_command_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("make_shapes", str(tmp_path), "--per-class", "1")
    call_command("make_shapes", str(tmp_path / "new"), "--per-class", "1", "--size", "32")
    assert len(list((tmp_path / "new").rglob("*.png"))) == 6


def test_boxes_writes_scenes_and_a_coco_file_that_pycocotools_loads(tmp_path, capsys):
    from pycocotools.coco import COCO

    # When scenes with boxes are written
    call_command("make_shapes", "--boxes", str(tmp_path / "scenes"), "--images", "40", "--size", "96")
    # Then there is an image per scene and a COCO file that pycocotools reads: boxes in pixels inside
    # their images, iscrowd 0, the area w * h, and some scenes with nothing in them
    out = tmp_path / "scenes"
    assert len(list((out / "images").glob("*.png"))) == 40
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "circle",
        "ring",
        "square",
        "triangle",
        "cross",
        "star",
    ]
    boxes = coco.loadAnns(coco.getAnnIds())
    assert len(boxes) > 60
    for box in boxes:
        x, y, w, h = box["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 96.01 and y + h <= 96.01
        assert box["iscrowd"] == 0 and box["area"] == pytest.approx(w * h, abs=0.05)
    empty = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=[i])]
    assert 0 < len(empty) < 15
    assert "40 scenes" in capsys.readouterr().out
