"""``annotator.formats.boxes``: each format read and written, round trips that give back the same
boxes, and the files or entries that cannot be read named with their reason."""

from __future__ import annotations

import json

import pytest

from annotator.formats.boxes import (
    Box,
    BoxAnswer,
    BoxFileError,
    coco_chunks,
    read_coco,
    read_label_studio,
    read_voc,
    read_yolo,
    read_yolo_classes,
    voc_xml,
    yolo_data_yaml,
    yolo_text,
)

CLASSES = ["car", "person", "dog"]
ANSWERS = [
    BoxAnswer("a.jpg", [Box("car", 10, 20, 30, 40), Box("person", 0.5, 1.25, 100, 50.75)], width=200, height=100),
    BoxAnswer("sub/b.png", [], width=64, height=48),  # nothing here
    BoxAnswer("c.png", [Box("dog", 63, 47, 1, 1)], width=64, height=48),
]


def same_boxes(a: list[BoxAnswer], b: list[BoxAnswer], tolerance: float = 1e-6) -> None:
    assert [x.filename for x in a] == [x.filename for x in b]
    for x, y in zip(a, b, strict=True):
        assert [box.label for box in x.boxes] == [box.label for box in y.boxes], x.filename
        for p, q in zip(x.boxes, y.boxes, strict=True):
            assert (p.x, p.y, p.w, p.h) == pytest.approx((q.x, q.y, q.w, q.h), abs=tolerance)


def test_coco_round_trip_loads_with_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    path = tmp_path / "annotations.json"
    path.write_text("".join(coco_chunks(ANSWERS, CLASSES)))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["bbox"] for a in first] == [[10, 20, 30, 40], [0.5, 1.25, 100, 50.75]]
    assert [a["area"] for a in first] == [1200, 5075.0] and all(a["iscrowd"] == 0 for a in first)
    answers, problems = read_coco(path.read_bytes())
    assert problems == []
    same_boxes(answers, ANSWERS)
    assert (answers[0].width, answers[0].height) == (200, 100)


def test_coco_entries_that_cannot_be_read_are_problems_of_their_image():
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"file_name": "no-id.jpg"}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 2, "category_id": 9, "bbox": [1, 2, 3, 4]},
            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4]},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "iscrowd": 1},
        ],
    }
    answers, problems = read_coco(json.dumps(coco))
    assert [(a.filename, len(a.boxes)) for a in answers] == [("a.jpg", 1)]
    reasons = {(p.filename, p.error) for p in problems}
    assert ("b.jpg", "annotation 2 names an unknown category") in reasons
    assert ("", "annotation 3 names no image in the file") in reasons
    assert any("needs an id and a file_name" in p.error for p in problems)
    with pytest.raises(BoxFileError, match="not a JSON file"):
        read_coco(b"{nope")
    with pytest.raises(BoxFileError, match="'images' list"):
        read_coco(b"[]")


def test_yolo_round_trip_with_classes_txt_and_data_yaml():
    for answer in ANSWERS:
        text = yolo_text(answer.boxes, classes=CLASSES, width=answer.width, height=answer.height)
        assert text.count("\n") == len(answer.boxes)
        back = read_yolo(text, classes=CLASSES, width=answer.width, height=answer.height)
        same_boxes([BoxAnswer(answer.filename, back)], [answer], tolerance=1e-3)
    assert yolo_text(ANSWERS[0].boxes[:1], classes=CLASSES, width=200, height=100) == (
        "0 0.125000 0.400000 0.150000 0.400000\n"
    )
    assert read_yolo_classes(yolo_data_yaml(CLASSES), name="data.yaml") == CLASSES
    assert read_yolo_classes(b"names: [car, person]\nnc: 2\n", name="dataset.yml") == ["car", "person"]
    assert read_yolo_classes(b"car\n\nperson\n", name="classes.txt") == ["car", "person"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0.5 0.5 0.1", "line 1: expected 'class cx cy w h'"),
        ("0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1", "line 2: class id 5 is not in the 3 classes"),
        ("car 0.5 0.5 0.1 0.1", "line 1: not numbers"),
    ],
)
def test_yolo_lines_that_cannot_be_read_name_their_line(text, message):
    with pytest.raises(ValueError, match=message):
        read_yolo(text, classes=CLASSES, width=10, height=10)


def test_yolo_yaml_with_gaps_or_without_names_is_refused():
    with pytest.raises(BoxFileError, match="without gaps"):
        read_yolo_classes("names:\n  0: car\n  2: dog\n", name="data.yaml")
    with pytest.raises(BoxFileError, match="no 'names'"):
        read_yolo_classes("nc: 2\n", name="data.yaml")


def test_voc_round_trip_and_refusals():
    for answer in ANSWERS:
        back = read_voc(voc_xml(answer))
        assert back.filename == answer.filename.split("/")[-1] and (back.width, back.height) == (
            answer.width,
            answer.height,
        )
        same_boxes([BoxAnswer(answer.filename, back.boxes)], [answer], tolerance=0.01)
    with pytest.raises(BoxFileError, match="DOCTYPE"):
        read_voc(
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><annotation><filename>&x;</filename></annotation>'
        )
    with pytest.raises(BoxFileError, match="no numeric bndbox"):
        read_voc(b"<annotation><filename>a.jpg</filename><object><name>car</name></object></annotation>")
    with pytest.raises(BoxFileError, match="not XML"):
        read_voc(b"<annotation>")


def test_label_studio_rectangles_in_percent_become_pixels():
    def rectangle(label, x, y, w, h, rotation=0):
        value = {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}
        return {"type": "rectanglelabels", "value": value, "original_width": 200, "original_height": 100}

    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/upload/1/5e2f-a.jpg"},
            "annotations": [{"result": [rectangle("car", 5, 20, 15, 40)]}],
        },
        {"id": 2, "data": {"image": "/data/local-files/?d=photos%2Fb.jpg"}, "annotations": [{"result": []}]},
        {
            "id": 3,
            "data": {"image": "s3://bucket/c.jpg"},
            "annotations": [{"result": [rectangle("dog", 0, 0, 10, 10, 30)]}],
        },
        {"id": 4, "data": {"image": "d.jpg"}, "annotations": [{"was_cancelled": True, "result": []}]},
        {"id": 5, "data": {}},
    ]
    answers, problems = read_label_studio(json.dumps(tasks))
    assert [a.filename for a in answers] == ["5e2f-a.jpg", "b.jpg"]
    assert answers[0].boxes == [Box("car", 10, 20, 30, 40)] and (answers[0].width, answers[0].height) == (200, 100)
    assert answers[1].boxes == []  # labeled in Label Studio as nothing there
    assert [(p.filename, p.error.split(":")[0]) for p in problems] == [
        ("c.jpg", "rotated rectangle (30°) of 'dog'"),
        ("", "task 5 has no data.image"),
    ]


def test_this_tools_box_csv_and_json_lines_read_back():
    from annotator.formats.boxes import read_box_csv, read_box_jsonl

    text = (
        "filename,width,height,label,x,y,w,h,annotator,created\n"
        "a.png,80,60,car,1,2,3,4,ann,2026-01-01\n"
        "a.png,80,60,person,5.5,6,7,8,ann,2026-01-01\n"
        "'=b.png,80,60,,,,,,ann,2026-01-01\n"
        "c.png,80,60,car,x,2,3,4,ann,2026-01-01\n"
    )
    answers, problems = read_box_csv(text)
    assert [(a.filename, [(b.label, b.x, b.y, b.w, b.h) for b in a.boxes]) for a in answers] == [
        ("a.png", [("car", 1, 2, 3, 4), ("person", 5.5, 6, 7, 8)]),
        ("=b.png", []),  # the formula quote taken off; nothing here
        ("c.png", []),
    ]
    assert problems[0].filename == "c.png" and "not numbers" in problems[0].error
    with pytest.raises(BoxFileError, match="missing h"):
        read_box_csv("filename,width,height,label,x,y,w\n")
    box = '{"label": "car", "x": 1, "y": 2, "w": 3, "h": 4}'
    lines = f'{{"filename": "a.png", "width": 8, "height": 6, "boxes": [{box}]}}\n\nnot json\n'
    answers, problems = read_box_jsonl(lines)
    assert [(a.filename, a.width, len(a.boxes)) for a in answers] == [("a.png", 8, 1)] and len(problems) == 1
