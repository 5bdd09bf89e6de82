"""The boxes an import brings with its images: the annotation files found among them (COCO JSON,
Label Studio's JSON export, Pascal VOC XML, YOLO ``labels/*.txt`` with ``classes.txt`` or
``data.yaml``, and this tool's own box CSV and JSON Lines) gathered into one ``BoxIndex``, which
then gives each image its boxes by its path in the import. No database and no HTTP here.

An image the files name with boxes gets them (an empty list: nothing there); one they do not name
comes in unlabeled. Like the rest of an import, what cannot be taken is rejected by name: an image
whose boxes name an unknown class, lie outside it, or were drawn on an image of another size; an
entry naming a file the import lacks; a file that cannot be read.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from annotator.formats.boxes import (
    BoxAnswer,
    BoxFileError,
    read_box_csv,
    read_box_jsonl,
    read_coco,
    read_label_studio,
    read_voc,
    read_yolo,
    read_yolo_classes,
)
from annotator.formats.imports import Candidate, Limits, Rejected, iter_folder, iter_uploads, zip_member_problem
from annotator.kinds.boxes import Box, box_problem

#: Files an import of a box project reads as annotations rather than as images.
ANNOTATION_SUFFIXES = frozenset({".json", ".jsonl", ".csv", ".xml", ".txt", ".yaml", ".yml"})
YOLO_CLASS_FILES = frozenset({"classes.txt", "data.yaml", "data.yml", "obj.names"})


@dataclass
class Unmatched:
    """An image or entry that cannot be imported as given: its name and why."""

    name: str
    error: str


@dataclass
class BoxIndex:
    """Every answer the annotation files of one import give, by the image path each names."""

    classes: frozenset[str]
    answers: dict[str, tuple[str, BoxAnswer]] = field(default_factory=dict)  # path -> (annotation file, answer)
    yolo: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # image path without suffix -> (file, text)
    yolo_classes: list[str] | None = None
    problems: list[Unmatched] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    by_base: dict[str, set[str]] = field(default_factory=dict)  # file name -> the paths naming it

    def __bool__(self) -> bool:
        return bool(self.answers or self.yolo or self.problems)

    def add(self, name: str, data: bytes) -> None:
        """Read the annotation file ``name`` (its path in the import, ``/``-separated)."""
        path = PurePosixPath(name)
        base, suffix = path.name.lower(), path.suffix.lower()
        try:
            if base in YOLO_CLASS_FILES:
                self.yolo_classes = read_yolo_classes(data, name=path.name)
            elif suffix == ".txt":
                self._add_yolo(path, data)
            elif suffix == ".xml":
                self._add_answer(name, path.parent, read_voc(data))
            elif suffix == ".json":
                self._add_json(name, path.parent, data)
            elif suffix in (".csv", ".jsonl"):  # this tool's own exports
                answers, problems = (read_box_csv if suffix == ".csv" else read_box_jsonl)(data)
                self.problems += [Unmatched(p.filename or name, f"{name}: {p.error}") for p in problems]
                for answer in answers:
                    self._add_answer(name, path.parent, answer)
        except (BoxFileError, ValueError) as exc:
            self.problems.append(Unmatched(name, f"could not be read: {exc}"))

    def _add_json(self, name: str, folder: PurePosixPath, data: bytes) -> None:
        try:
            answers, problems = read_coco(data)
        except BoxFileError as coco_error:
            try:
                answers, problems = read_label_studio(data)
            except BoxFileError:
                raise coco_error from None
        for problem in problems:
            self.problems.append(Unmatched(problem.filename or name, f"{name}: {problem.error}"))
        for answer in answers:
            self._add_answer(name, folder, answer)

    def _add_answer(self, name: str, folder: PurePosixPath, answer: BoxAnswer) -> None:
        text = answer.filename.replace("\\", "/")
        while text.startswith("./"):
            text = text[2:]
        given = PurePosixPath(text)
        # Files name images relative to themselves or to the import's root; both are looked up.
        for key in {str(given), str(folder / given)}:
            self.answers[key] = (name, answer)
        self.by_base.setdefault(given.name, set()).add(str(given))

    def _add_yolo(self, path: PurePosixPath, data: bytes) -> None:
        parts = list(path.parts)
        if "labels" not in parts:
            return  # a text file that is not a YOLO label file (a README, a list)
        at = len(parts) - 1 - parts[::-1].index("labels")
        image = PurePosixPath(*parts[:at], "images", *parts[at + 1 :]).with_suffix("")
        self.yolo[str(image)] = (str(path), data)
        beside = PurePosixPath(*parts[:at], *parts[at + 1 :]).with_suffix("")
        self.yolo.setdefault(str(beside), (str(path), data))

    def boxes_for(self, name: str, *, width: int, height: int) -> list[Box] | Unmatched | None:
        """The boxes of the image ``name`` (its path in the import), displayed ``width`` x ``height``:
        a list (empty: nothing there), ``None`` when no file names it, or why it cannot be imported."""
        path = PurePosixPath(name)
        found = self._answer(path)
        if found is not None:
            source, answer = found
            if (
                answer.width is not None
                and answer.height is not None
                and (answer.width, answer.height)
                != (
                    width,
                    height,
                )
            ):
                return Unmatched(
                    name,
                    f"{source} gives its size as {answer.width}x{answer.height}; the image shows "
                    f"{width}x{height} (boxes drawn on another size or orientation)",
                )
            boxes: list[Box] = list(answer.boxes)
        else:
            text = self._yolo(path)
            if text is None:
                return None
            source, data = text
            if self.yolo_classes is None:
                return Unmatched(name, f"{source}: YOLO labels need classes.txt or data.yaml naming the classes")
            try:
                boxes = read_yolo(data, classes=self.yolo_classes, width=width, height=height)
            except ValueError as exc:
                return Unmatched(name, f"{source}: {exc}")
        for box in boxes:
            problem = box_problem(box, width=width, height=height, classes=self.classes)
            if problem is not None:
                known = f" (classes: {', '.join(sorted(self.classes))})" if box.label not in self.classes else ""
                return Unmatched(name, f"{source}: {problem}{known}")
        return boxes

    def _answer(self, path: PurePosixPath) -> tuple[str, BoxAnswer] | None:
        # The image's path, then shorter and shorter ends of it (a file naming "x.jpg" for "images/x.jpg").
        parts = path.parts
        for start in range(len(parts)):
            key = str(PurePosixPath(*parts[start:]))
            if key in self.answers:
                self.used.add(key)
                return self.answers[key]
        # A loose upload has only its name: the one entry naming an image of that name, if one only.
        named = self.by_base.get(path.name, set())
        if len(parts) == 1 and len(named) == 1:
            key = next(iter(named))
            self.used.add(key)
            return self.answers[key]
        return None

    def _yolo(self, path: PurePosixPath) -> tuple[str, bytes] | None:
        key = str(path.with_suffix(""))
        found = self.yolo.get(key)
        if found is not None:
            self.used.add(found[0])
        return found

    def leftovers(self) -> Iterator[Unmatched]:
        """The problems met, then each entry naming an image the import lacked (once every image was asked)."""
        yield from self.problems
        named: dict[str, str] = {}
        for key, (source, answer) in self.answers.items():
            named.setdefault(answer.filename, source)
            if key in self.used:
                named[answer.filename] = ""
        for filename, source in named.items():
            if source:
                yield Unmatched(filename, f"missing file: {source} names it, but the import has no such image")
        used_yolo = {source for source, _ in self.yolo.values() if source in self.used}
        for source in sorted({source for source, _ in self.yolo.values()} - used_yolo):
            yield Unmatched(source, "missing file: no image of this name beside the labels folder")


def is_annotation_file(name: str) -> bool:
    """Whether an import of a box project reads ``name`` as an annotation file."""
    return PurePosixPath(name).suffix.lower() in ANNOTATION_SUFFIXES


def box_index(files: Iterable[tuple[str, bytes]], *, classes: Iterable[str]) -> BoxIndex:
    """The index of the annotation files ``files`` (``(path in the import, bytes)``), class files first."""
    index = BoxIndex(classes=frozenset(classes))
    ordered = sorted(files, key=lambda f: PurePosixPath(f[0]).name.lower() not in YOLO_CLASS_FILES)
    for name, data in ordered:
        index.add(name, data)
    return index


def with_boxes(candidates: Iterable[Candidate | Rejected], index: BoxIndex) -> Iterator[Candidate | Rejected]:
    """``candidates`` with each image's boxes from ``index`` (an image that cannot take them is
    rejected by name), then what ``index`` could not place."""
    for candidate in candidates:
        if isinstance(candidate, Candidate):
            found = index.boxes_for(candidate.name, width=candidate.width, height=candidate.height)
            if isinstance(found, Unmatched):
                yield Rejected(candidate.name, found.error)
                continue
            candidate.boxes = found
        yield candidate
    for left in index.leftovers():
        yield Rejected(left.name, left.error)


def _zip_annotation_files(
    name: str, fileobj: BinaryIO, limits: Limits
) -> tuple[list[tuple[str, bytes]], list[Rejected]]:
    """The annotation files inside the zip upload ``name`` (read before its images; the file is left
    at its start), and those refused as its images would be (too large, a zip bomb)."""
    found: list[tuple[str, bytes]] = []
    refused: list[Rejected] = []
    try:
        with zipfile.ZipFile(fileobj) as archive:
            for info in archive.infolist():
                path = PurePosixPath(info.filename.replace("\\", "/"))
                if path.is_absolute() or ".." in path.parts or info.is_dir() or not is_annotation_file(path.name):
                    continue  # unsafe paths are the image pass's to report
                problem = zip_member_problem(info, limits)
                if problem is not None:
                    refused.append(Rejected(f"{name}/{info.filename}", problem))
                    continue
                with archive.open(info) as member:
                    found.append((str(path), member.read(limits.max_file_bytes + 1)))
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError):
        pass  # the image pass says why the archive cannot be read
    fileobj.seek(0)
    return found, refused


def iter_box_uploads(
    files: Iterable[tuple[str, BinaryIO]], *, limits: Limits, classes: Iterable[str]
) -> Iterator[Candidate | Rejected]:
    """``iter_uploads`` for a box project: the annotation files among the uploads (loose or in zips)
    read first, then each image with its boxes."""
    files = list(files)
    annotations: list[tuple[str, bytes]] = []
    refused: list[Rejected] = []
    images: list[tuple[str, BinaryIO]] = []
    for name, fileobj in files:
        base = posixpath.basename(name.replace("\\", "/"))
        if base.lower().endswith(".zip"):
            found, problems = _zip_annotation_files(base, fileobj, limits)
            annotations += found
            refused += problems
            images.append((name, fileobj))
        elif is_annotation_file(base):
            annotations.append((base, fileobj.read(limits.max_file_bytes + 1)))
        else:
            images.append((name, fileobj))
    yield from refused
    index = box_index(annotations, classes=classes)
    yield from with_boxes(iter_uploads(images, limits=limits, labels=set(), skip=is_annotation_file), index)


def iter_box_folder(root: Path, *, limits: Limits, classes: Iterable[str]) -> Iterator[Candidate | Rejected]:
    """``iter_folder`` for a box project: the folder's annotation files read first (links not
    followed, nothing outside it), then each image with its boxes."""
    root = root.resolve()
    annotations: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if not is_annotation_file(filename) or path.is_symlink() or filename.startswith("."):
                continue
            try:
                if path.stat().st_size <= limits.max_file_bytes:
                    annotations.append((path.relative_to(root).as_posix(), path.read_bytes()))
            except OSError:
                continue
    index = box_index(annotations, classes=classes)
    yield from with_boxes(iter_folder(root, limits=limits, labels=set(), skip=is_annotation_file), index)
