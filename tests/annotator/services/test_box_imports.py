"""Importing a half-labeled box dataset: the annotation files among the images (COCO JSON, YOLO
labels with classes.txt or data.yaml, Pascal VOC XML, Label Studio's JSON export), by zip upload
and from a server folder, give each image its boxes; what cannot be taken is rejected by name."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from annotator.formats.boxes import BoxAnswer, voc_xml, yolo_data_yaml, yolo_text
from annotator.kinds.boxes import Box
from annotator.models import Annotation, AnnotationBox, BoxRole, Item, ItemBox
from annotator.services.imports import items_import_folder, items_import_uploads
from tests.factories import make_project, zip_bytes

pytestmark = pytest.mark.django_db

CLASSES = ["car", "person"]


def png(seed: int, size: tuple[int, int] = (80, 60)) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, seed * 90 % 256, 120)).save(data, format="PNG")
    return data.getvalue()


def coco(images: dict[str, tuple[int, int]], boxes: dict[str, list[tuple[str, list[float]]]]) -> bytes:
    ids = {name: i + 1 for i, name in enumerate(images)}
    categories = [{"id": i + 1, "name": n} for i, n in enumerate([*CLASSES, "bus"])]
    category = {c["name"]: c["id"] for c in categories}
    annotations = [
        {"id": k, "image_id": ids[name], "category_id": category[label], "bbox": bbox, "iscrowd": 0}
        for k, (name, label, bbox) in enumerate(((n, lab, b) for n, bs in boxes.items() for lab, b in bs), start=1)
    ]
    files = [{"id": ids[n], "file_name": n, "width": w, "height": h} for n, (w, h) in images.items()]
    return json.dumps({"images": files, "annotations": annotations, "categories": categories}).encode()


def boxes_of(project, name: str) -> list[tuple[str, float, float, float, float]] | None:
    item = Item.objects.get(project=project, original_name=name)
    if item.status != "labeled":
        return None
    rows = ItemBox.objects.filter(item=item, role=BoxRole.CONSENSUS).order_by("id")
    return [(r.label_class.name, r.x, r.y, r.w, r.h) for r in rows]


@pytest.fixture
def street(user):
    return make_project(user, name="Street", labels=CLASSES, kind="boxes")


def test_a_coco_zip_brings_boxes_nothing_here_and_unlabeled_images(user, street):
    annotations = coco(
        {"a.png": (80, 60), "b.png": (80, 60), "d.png": (80, 60), "e.png": (80, 60), "f.png": (80, 60)},
        {
            "a.png": [("car", [10, 20, 30, 15]), ("person", [70, 50, 20, 20])],  # the person sticks out: cut
            "e.png": [("bus", [1, 1, 5, 5])],
            "f.png": [("car", [100, 1, 5, 5])],
        },
    )
    archive = zip_bytes(
        {
            "street/images/a.png": png(1),
            "street/images/b.png": png(2),
            "street/images/c.png": png(3),
            "street/images/e.png": png(5),
            "street/images/f.png": png(6),
            "street/annotations/instances.json": annotations,
        }
    )
    summary = items_import_uploads(project=street, files=[("street.zip", io.BytesIO(archive))], user=user)
    assert (summary.imported, summary.labeled) == (3, 2)
    assert boxes_of(street, "street/images/a.png") == [("car", 10, 20, 30, 15), ("person", 70, 50, 10, 10)]
    assert boxes_of(street, "street/images/b.png") == []  # listed without boxes: nothing here
    assert boxes_of(street, "street/images/c.png") is None  # not in the file: to label
    rejected = {r["name"]: r["error"] for r in summary.rejected}
    assert "unknown class 'bus'" in rejected["street/images/e.png"]
    assert "outside the 80x60 image" in rejected["street/images/f.png"]
    assert "missing file" in rejected["d.png"] and "instances.json" in rejected["d.png"]
    # Each imported answer is an import annotation whose boxes say so
    a = Item.objects.get(project=street, original_name="street/images/a.png")
    assert list(AnnotationBox.objects.filter(annotation__item=a).values_list("outcome", flat=True)) == ["imported"] * 2
    assert Annotation.objects.get(item=a).source == "import"
    assert sorted(a.answer_classes.values_list("label_class__name", flat=True)) == ["car", "person"]


def test_a_yolo_folder_with_data_yaml_and_an_empty_label_file(user, street, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "x.png").write_bytes(png(1, (100, 50)))
    (tmp_path / "images" / "y.png").write_bytes(png(2, (100, 50)))
    (tmp_path / "images" / "z.png").write_bytes(png(3, (100, 50)))
    boxes = [Box("person", 10, 5, 20, 10), Box("car", 50, 25, 50, 25)]
    (tmp_path / "labels" / "x.txt").write_text(yolo_text(boxes, classes=CLASSES, width=100, height=50))
    (tmp_path / "labels" / "y.txt").write_text("")
    (tmp_path / "labels" / "gone.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text(yolo_data_yaml(CLASSES))
    summary = items_import_folder(project=street, root=tmp_path, user=user)
    assert (summary.imported, summary.labeled) == (3, 2)
    assert boxes_of(street, "images/x.png") == [("person", 10, 5, 20, 10), ("car", 50, 25, 50, 25)]
    assert boxes_of(street, "images/y.png") == [] and boxes_of(street, "images/z.png") is None
    assert [r["name"] for r in summary.rejected] == ["labels/gone.txt"]


def test_yolo_labels_without_their_classes_are_rejected_with_the_reason(user, street):
    archive = zip_bytes({"images/x.png": png(1), "labels/x.txt": b"0 0.5 0.5 0.2 0.2\n"})
    summary = items_import_uploads(project=street, files=[("d.zip", io.BytesIO(archive))], user=user)
    assert summary.imported == 0
    assert "classes.txt or data.yaml" in summary.rejected[0]["error"]


def test_pascal_voc_files_and_a_size_that_does_not_match(user, street):
    good = voc_xml(BoxAnswer("a.png", [Box("car", 1, 2, 30, 20)], width=80, height=60))
    wrong = voc_xml(BoxAnswer("b.png", [Box("car", 1, 2, 3, 4)], width=60, height=80))
    files = [
        ("a.png", io.BytesIO(png(1))),
        ("b.png", io.BytesIO(png(2))),
        ("a.xml", io.BytesIO(good)),
        ("b.xml", io.BytesIO(wrong)),
    ]
    summary = items_import_uploads(project=street, files=files, user=user)
    assert boxes_of(street, "a.png") == [("car", 1, 2, 30, 20)]
    assert summary.imported == 1 and "gives its size as 60x80; the image shows 80x60" in summary.rejected[0]["error"]


def test_a_label_studio_export_in_percent(user, street):
    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/upload/3/ab12-a.png"},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "rectanglelabels",
                            "original_width": 80,
                            "original_height": 60,
                            "value": {
                                "x": 25,
                                "y": 50,
                                "width": 50,
                                "height": 25,
                                "rotation": 0,
                                "rectanglelabels": ["person"],
                            },
                        }
                    ]
                }
            ],
        }
    ]
    files = [("ab12-a.png", io.BytesIO(png(1))), ("export.json", io.BytesIO(json.dumps(tasks).encode()))]
    summary = items_import_uploads(project=street, files=files, user=user)
    assert summary.rejected == [] and boxes_of(street, "ab12-a.png") == [("person", 20, 30, 40, 15)]


def test_boxes_of_an_exif_turned_photo_are_in_its_displayed_frame(user, street):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: 60 x 80 as displayed
    data = io.BytesIO()
    Image.new("RGB", (80, 60), "gray").save(data, format="JPEG", exif=exif)
    annotations = coco({"p.jpg": (60, 80)}, {"p.jpg": [("car", [5, 60, 50, 20])]})
    files = [("p.jpg", io.BytesIO(data.getvalue())), ("coco.json", io.BytesIO(annotations))]
    summary = items_import_uploads(project=street, files=files, user=user)
    assert summary.rejected == [] and boxes_of(street, "p.jpg") == [("car", 5, 60, 50, 20)]


def test_the_generated_scenes_import_as_they_were_written(user, tmp_path):
    from ml.evaluation.scenes import write_scenes
    from ml.evaluation.shapes import CLASSES as SHAPES

    written = write_scenes(tmp_path, n_images=12, size=64, seed=3)
    project = make_project(user, name="Scenes", labels=list(SHAPES), kind="boxes")
    summary = items_import_folder(project=project, root=tmp_path, user=user)
    assert summary.rejected == [] and (summary.imported, summary.labeled) == (12, 12)
    assert ItemBox.objects.filter(item__project=project, role=BoxRole.CONSENSUS).count() == written["boxes"]
    assert Item.objects.filter(project=project, n_boxes=0).count() == written["empty"]
