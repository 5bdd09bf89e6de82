"""Object boxes in the files other tools read and write: COCO JSON, YOLO text files with their
``classes.txt`` or ``data.yaml``, Pascal VOC XML and Label Studio's JSON export of
``rectanglelabels``, and this tool's own CSV and JSON Lines. No database and no HTTP here.

Everything is read into, and written from, one shape: a ``BoxAnswer`` per image (its file name,
its size when the file says it, its boxes), a ``Box`` being a class name and ``x, y, w, h`` in
pixels of the displayed image (top-left corner and size; the task kind's own type, with its checks,
``kinds.boxes.box_problem`` and ``clip_box``). What cannot be read is a ``BoxProblem``
that names the image and the reason, so an import can reject that image alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from annotator.kinds.boxes import Box


@dataclass
class BoxAnswer:
    """An image's boxes as a file gives them: ``filename`` (as the file names it, ``/``-separated),
    ``width``/``height`` when the file says them, ``boxes`` (empty: nothing there)."""

    filename: str
    boxes: list[Box] = field(default_factory=list)
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class BoxProblem:
    """Why an image's boxes (or a whole file, ``filename`` ``""``) could not be read."""

    filename: str
    error: str


class BoxFileError(ValueError):
    """The file as a whole is not what its format says (not JSON, no ``images`` list ...)."""


# --- COCO -----------------------------------------------------------------------------------------


def read_coco(data: bytes | str) -> tuple[list[BoxAnswer], list[BoxProblem]]:
    """A COCO JSON file's images with their ``bbox`` annotations (crowd regions, ``iscrowd`` 1, are
    left out). An annotation naming an unknown image or category is a problem of that image."""
    try:
        coco = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BoxFileError(f"not a JSON file: {exc}") from exc
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise BoxFileError("a COCO file is an object with an 'images' list")
    categories = {c.get("id"): str(c.get("name")) for c in coco.get("categories") or [] if isinstance(c, dict)}
    answers: dict[Any, BoxAnswer] = {}
    problems: list[BoxProblem] = []
    for image in coco["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("file_name"), str) or "id" not in image:
            problems.append(BoxProblem("", f"an image entry needs an id and a file_name: {str(image)[:100]}"))
            continue
        answers[image["id"]] = BoxAnswer(
            image["file_name"], width=_int_or_none(image.get("width")), height=_int_or_none(image.get("height"))
        )
    broken: dict[Any, str] = {}
    for annotation in coco.get("annotations") or []:
        if not isinstance(annotation, dict) or annotation.get("iscrowd"):
            continue
        answer = answers.get(annotation.get("image_id"))
        if answer is None:
            problems.append(BoxProblem("", f"annotation {annotation.get('id')} names no image in the file"))
            continue
        label = categories.get(annotation.get("category_id"))
        bbox = annotation.get("bbox")
        if label is None:
            broken[annotation["image_id"]] = f"annotation {annotation.get('id')} names an unknown category"
        elif not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            broken[annotation["image_id"]] = f"annotation {annotation.get('id')} has no [x, y, w, h] bbox"
        else:
            answer.boxes.append(Box(label, *(float(v) for v in bbox)))
    problems += [BoxProblem(answers[image_id].filename, error) for image_id, error in broken.items()]
    return [a for image_id, a in answers.items() if image_id not in broken], problems


def coco_chunks(answers: Iterable[BoxAnswer], classes: Sequence[str]) -> Iterator[str]:
    """A COCO JSON file of ``answers`` (sizes required), streamed in chunks with flat memory: category
    ids from 1 in ``classes`` order, ``bbox`` in pixels, ``area`` w·h, ``iscrowd`` 0. Images are
    written as they come; their annotations wait in a temporary file until the images list closes."""
    category = {name: i + 1 for i, name in enumerate(classes)}
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(classes)]
    yield '{"info": {"description": "Object boxes exported by Active Annotator"}, "licenses": [], '
    yield '"categories": ' + json.dumps(categories, ensure_ascii=False) + ', "images": ['
    with tempfile.TemporaryFile("w+", encoding="utf-8") as held:
        n = 0
        for image_id, answer in enumerate(answers, start=1):
            entry = {"id": image_id, "file_name": answer.filename, "width": answer.width, "height": answer.height}
            yield ("" if image_id == 1 else ", ") + json.dumps(entry, ensure_ascii=False)
            for b in answer.boxes:
                n += 1
                bbox = [_round(b.x), _round(b.y), _round(b.w), _round(b.h)]
                annotation = {"id": n, "image_id": image_id, "category_id": category[b.label], "bbox": bbox}
                held.write(
                    ("" if n == 1 else ", ") + json.dumps({**annotation, "area": _round(b.w * b.h), "iscrowd": 0})
                )
        yield '], "annotations": ['
        held.seek(0)
        while chunk := held.read(1024 * 1024):
            yield chunk
    yield "]}"


# --- YOLO -----------------------------------------------------------------------------------------


def read_yolo_classes(data: bytes | str, *, name: str) -> list[str]:
    """The class names of a YOLO dataset, in id order: ``classes.txt`` (one per line) or a
    ``data.yaml`` / ``dataset.yaml`` whose ``names`` is a list or an ``{id: name}`` mapping."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if posixpath.basename(name).lower().endswith((".yaml", ".yml")):
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BoxFileError(f"{name} is not YAML: {exc}") from exc
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(names, Mapping):
            try:
                ordered = sorted((int(k), str(v)) for k, v in names.items())
            except (TypeError, ValueError) as exc:
                raise BoxFileError(f"{name}: the names mapping needs integer ids") from exc
            if [k for k, _ in ordered] != list(range(len(ordered))):
                raise BoxFileError(f"{name}: the class ids must be 0, 1, 2, ... without gaps")
            return [v for _, v in ordered]
        if isinstance(names, list):
            return [str(v) for v in names]
        raise BoxFileError(f"{name} has no 'names' list or mapping")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_yolo(data: bytes | str, *, classes: Sequence[str], width: int, height: int) -> list[Box]:
    """One image's YOLO label file: a line ``class_id cx cy w h`` per box, normalised to the image
    (0..1), on a ``width`` x ``height`` image; empty: nothing there. Raises ``ValueError`` naming the
    line that cannot be read."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise ValueError(f"line {number}: expected 'class cx cy w h', got {line.strip()[:60]!r}")
        try:
            class_id, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:])
        except ValueError as exc:
            raise ValueError(f"line {number}: not numbers: {line.strip()[:60]!r}") from exc
        if not 0 <= class_id < len(classes):
            raise ValueError(f"line {number}: class id {class_id} is not in the {len(classes)} classes")
        boxes.append(Box(classes[class_id], (cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height))
    return boxes


def yolo_text(boxes: Iterable[Box], *, classes: Sequence[str], width: int, height: int) -> str:
    """An image's YOLO label file: ``class_id cx cy w h`` per box, normalised, 6 decimals."""
    index = {name: i for i, name in enumerate(classes)}
    lines = [
        f"{index[b.label]} {(b.x + b.w / 2) / width:.6f} {(b.y + b.h / 2) / height:.6f} "
        f"{b.w / width:.6f} {b.h / height:.6f}"
        for b in boxes
    ]
    return "".join(line + "\n" for line in lines)


def yolo_data_yaml(classes: Sequence[str]) -> str:
    """The dataset's ``data.yaml``: image and label folders, and the class names by id."""
    spec = {"path": ".", "train": "images", "val": "images", "nc": len(classes), "names": dict(enumerate(classes))}
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


# --- Pascal VOC -----------------------------------------------------------------------------------


def read_voc(data: bytes) -> BoxAnswer:
    """One Pascal VOC annotation file: its image's ``filename``, ``size`` and each ``object``'s
    ``name`` and ``bndbox`` (``xmin ymin xmax ymax``, pixels). Files declaring a DOCTYPE or entities
    are refused (no entity expansion from uploads)."""
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise BoxFileError("VOC files with a DOCTYPE or entities are not read")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise BoxFileError(f"not XML: {exc}") from exc
    filename = (root.findtext("filename") or "").strip()
    if root.tag != "annotation" or not filename:
        raise BoxFileError("a VOC file is an <annotation> with a <filename>")
    answer = BoxAnswer(
        filename,
        width=_int_or_none(root.findtext("size/width")),
        height=_int_or_none(root.findtext("size/height")),
    )
    for number, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        corners = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
        try:
            x0, y0, x1, y1 = (float(v) for v in corners)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise BoxFileError(f"object {number} ({name or 'no name'}) has no numeric bndbox") from exc
        answer.boxes.append(Box(name, x0, y0, x1 - x0, y1 - y0))
    return answer


def voc_xml(answer: BoxAnswer) -> bytes:
    """``answer`` as a Pascal VOC annotation file (size required; corners rounded to 0.01 px)."""
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "folder").text = "images"
    ElementTree.SubElement(root, "filename").text = posixpath.basename(answer.filename)
    ElementTree.SubElement(root, "path").text = answer.filename
    size = ElementTree.SubElement(root, "size")
    for key, count in (("width", answer.width), ("height", answer.height), ("depth", 3)):
        ElementTree.SubElement(size, key).text = str(count)
    ElementTree.SubElement(root, "segmented").text = "0"
    for box in answer.boxes:
        obj = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(obj, "name").text = box.label
        for key, text in (("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            ElementTree.SubElement(obj, key).text = text
        bndbox = ElementTree.SubElement(obj, "bndbox")
        corners = (box.x, box.y, box.x + box.w, box.y + box.h)
        for key, corner in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
            ElementTree.SubElement(bndbox, key).text = f"{_round(corner):.2f}".rstrip("0").rstrip(".")
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# --- Label Studio ---------------------------------------------------------------------------------


def read_label_studio(data: bytes | str) -> tuple[list[BoxAnswer], list[BoxProblem]]:
    """Label Studio's JSON export: a list of tasks, each with ``data.image`` (a URL or path; the file
    name is its last part) and ``annotations`` whose ``result`` holds ``rectanglelabels`` in percent
    of ``original_width`` x ``original_height``. The latest annotation that was not cancelled counts;
    rotated rectangles are a problem of their image (a box here has no angle)."""
    try:
        tasks = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BoxFileError(f"not a JSON file: {exc}") from exc
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise BoxFileError("a Label Studio export is a list of tasks")
    answers, problems = [], []
    for task in tasks:
        image = (task.get("data") or {}).get("image") if isinstance(task, dict) else None
        if not isinstance(image, str) or not image:
            problems.append(
                BoxProblem("", f"task {task.get('id') if isinstance(task, dict) else '?'} has no data.image")
            )
            continue
        filename = _label_studio_name(image)
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            continue  # not labeled in Label Studio: imported without an answer
        try:
            answers.append(_label_studio_answer(filename, done[-1].get("result") or []))
        except ValueError as exc:
            problems.append(BoxProblem(filename, str(exc)))
    return answers, problems


def _label_studio_name(image: str) -> str:
    """The file name in a Label Studio image reference: ``/data/upload/1/ab12-cat.jpg``,
    ``/data/local-files/?d=photos/cat.jpg``, ``s3://bucket/cat.jpg`` ... (its last path part)."""
    parts = urlsplit(image)
    path = parts.path
    if "d=" in parts.query:
        path = unquote(parts.query.split("d=", 1)[1].split("&", 1)[0])
    return posixpath.basename(unquote(path))


def _label_studio_answer(filename: str, results: list[Any]) -> BoxAnswer:
    answer = BoxAnswer(filename)
    for result in results:
        if not isinstance(result, dict) or result.get("type") != "rectanglelabels":
            continue
        value = result.get("value") or {}
        labels = value.get("rectanglelabels") or []
        if len(labels) != 1:
            raise ValueError(f"a rectangle needs one label, has {len(labels)}")
        if abs(float(value.get("rotation") or 0)) > 1e-6:
            raise ValueError(f"rotated rectangle ({value.get('rotation')}°) of {labels[0]!r}: boxes here are upright")
        width: Any = result.get("original_width")
        height: Any = result.get("original_height")
        if not (_is_number(width) and _is_number(height)) or not all(
            _is_number(value.get(k)) for k in ("x", "y", "width", "height")
        ):
            raise ValueError(f"rectangle of {labels[0]!r} lacks its percentages or the image's original size")
        answer.width, answer.height = int(width), int(height)
        answer.boxes.append(
            Box(
                str(labels[0]),
                value["x"] / 100 * width,
                value["y"] / 100 * height,
                value["width"] / 100 * width,
                value["height"] / 100 * height,
            )
        )
    return answer


# --- this tool's CSV and JSON Lines --------------------------------------------------------------

#: What a spreadsheet would run as a formula: the export quotes such a cell with a leading ``'``.
_QUOTED = ("'=", "'+", "'-", "'@", "'\t", "'\r")


def _unquoted(cell: str) -> str:
    return cell[1:] if cell.startswith(_QUOTED) else cell


def read_box_csv(data: bytes | str) -> tuple[list[BoxAnswer], list[BoxProblem]]:
    """The CSV a box project exports: a header naming at least ``filename,width,height,label,x,y,w,h``
    and a row per box, an image with nothing in it being one row with an empty label."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text))
    needed = ["filename", "width", "height", "label", "x", "y", "w", "h"]
    missing = [name for name in needed if name not in (reader.fieldnames or [])]
    if missing:
        raise BoxFileError(f"a box CSV needs the columns {', '.join(needed)}; missing {', '.join(missing)}")
    answers: dict[str, BoxAnswer] = {}
    problems: list[BoxProblem] = []
    for number, row in enumerate(reader, start=2):
        filename = _unquoted(row["filename"] or "")
        if not filename:
            problems.append(BoxProblem("", f"line {number} names no file"))
            continue
        answer = answers.setdefault(
            filename, BoxAnswer(filename, width=_int_or_none(row["width"]), height=_int_or_none(row["height"]))
        )
        label = _unquoted(row["label"] or "")
        if not label:
            continue  # nothing in this image
        try:
            answer.boxes.append(Box(label, *(float(row[k]) for k in ("x", "y", "w", "h"))))
        except (TypeError, ValueError):
            problems.append(BoxProblem(filename, f"line {number}: x, y, w, h are not numbers"))
    return list(answers.values()), problems


def read_box_jsonl(data: bytes | str) -> tuple[list[BoxAnswer], list[BoxProblem]]:
    """The JSON Lines a box project exports: per line ``{"filename", "width", "height", "boxes":
    [{"label", "x", "y", "w", "h"}]}`` (an empty list: nothing there)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    answers, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answer = BoxAnswer(
                str(record["filename"]),
                width=_int_or_none(record.get("width")),
                height=_int_or_none(record.get("height")),
            )
            for box in record.get("boxes") or []:
                answer.boxes.append(Box(str(box["label"]), *(float(box[k]) for k in ("x", "y", "w", "h"))))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(BoxProblem("", f"line {number} is not an image with its boxes: {exc}"))
            continue
        answers.append(answer)
    return answers, problems


# --- shared ---------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _round(value: float) -> float:
    """Pixels to 0.01: exact enough for any annotation, short in the file."""
    return round(float(value), 2)
