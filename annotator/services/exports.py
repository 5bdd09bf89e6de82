"""Export files: a project's labels written to a file under ``DATA_DIR/exports/project_<id>/`` in one
of the formats its kind offers (``annotator.formats.exports``; box projects' in ``formats.box_exports``),
with the image files zipped alongside on request. Written under a temporary name and renamed, so a
reader sees the whole file or none. The choice of rows and writer by kind is here too, for the
direct downloads (``annotator.responses``) as well."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, BinaryIO

from django.utils.text import slugify

from annotator import paths
from annotator.formats import box_exports, exports
from annotator.formats.zipstream import ZipWriter
from annotator.kinds import kind_of
from annotator.models import Item, Project, ReviewStatus
from annotator.selectors.classes import project_classes
from annotator.selectors.exports import export_box_rows, export_rows
from annotator.services.errors import ServiceError

Row = dict[str, Any]
#: The file name ending of each format (after ``<project>-labels``), zipped or not.
EXPORT_ENDINGS = {
    "csv": ".csv",
    "jsonl": ".jsonl",
    "coco": "-coco.json",
    "imagefolder": ".zip",
    "yolo": "-yolo.zip",
    "voc": "-voc.zip",
}


def export_rows_of(*, project: Project, include_ambiguous: bool = False) -> Iterator[Row]:
    """The rows the project's exports write: ``export_rows``, with the boxes on box projects."""
    if kind_of(project).boxes:
        return export_box_rows(project=project, include_ambiguous=include_ambiguous)
    return export_rows(project=project, include_ambiguous=include_ambiguous)


def export_text_chunks(*, project: Project, fmt: str, rows: Iterable[Row]) -> Iterator[str]:
    """The rows as the text format ``fmt`` (``csv``, ``jsonl`` or ``coco``) of the project's kind, in chunks."""
    boxes = kind_of(project).boxes
    if fmt == "csv":
        return box_exports.box_csv_lines(rows) if boxes else exports.csv_lines(rows)
    if fmt == "jsonl":
        return box_exports.box_jsonl_lines(rows) if boxes else exports.jsonl_lines(rows)
    classes = [c.name for c in project_classes(project=project)]
    return box_exports.box_coco_chunks(rows, classes) if boxes else exports.coco_chunks(rows, classes)


def export_zip_write(*, project: Project, fmt: str, rows: Iterable[Row], out: IO[bytes], images: bool = False) -> int:
    """Write the rows as the zip format ``fmt`` to ``out``: ImageFolder (always with the images),
    YOLO or Pascal VOC (with the images when ``images``). Returns the number of files or images."""
    if fmt == "imagefolder":
        return exports.write_imagefolder((exports.with_stored_suffix(r) for r in rows), out, open_item_file)
    open_file = open_item_file if images else None
    if fmt == "yolo":
        classes = [c.name for c in project_classes(project=project)]
        return box_exports.write_yolo(rows, out, classes, open_file)
    return box_exports.write_voc(rows, out, open_file)


@contextlib.contextmanager
def open_item_file(item: Item) -> Iterator[IO[bytes]]:
    """The item's stored image file, open for reading while in the ``with`` block.

    Afterwards the item holds its file's name again instead of the ``FieldFile``: a ``FieldFile``
    refers back to its item, a reference cycle that only Python's cyclic garbage collector frees,
    so the rows of an export with images piled up between its runs (measured: 6.5 MB instead of
    3.8 MB at 2,000 items of a box project)."""
    field_file = item.file
    try:
        with field_file.open("rb") as src:
            yield src
    finally:
        item.__dict__["file"] = field_file.name  # what Django's FileDescriptor turns into a FieldFile


def export_file_write(
    *,
    project: Project,
    fmt: str,
    images: bool = False,
    only_reviewed: bool = False,
    include_ambiguous: bool = False,
    prefix: str = "",
    progress: Callable[[Iterable[Row], int], Iterable[Row]] | None = None,
) -> tuple[dict[str, Any], str]:
    """Write the project's labels as ``fmt`` (one of ``exports.export_formats`` of its kind) to a file
    whose name starts with ``prefix``; ``images`` zips the image files alongside the labels file (in
    YOLO and VOC zips, in their own ``images/`` folder). ``progress(rows, total)`` may wrap the rows
    as they are written, to report how far it got. Returns the summary (``items``, ``format``,
    ``images``, ``bytes``; on box projects also ``boxes``) and the file's path under ``DATA_DIR``."""
    kind = kind_of(project)
    problem = exports.export_format_problem(fmt, kind)
    if problem is not None:
        raise ServiceError(problem)
    rows: Iterable[Row] = export_rows_of(project=project, include_ambiguous=include_ambiguous)
    if only_reviewed:
        reviewed = {ReviewStatus.REVIEWED, ReviewStatus.AMBIGUOUS}
        rows = (row for row in rows if row["item"].review_status in reviewed)
    total = Item.objects.filter(project=project, status=Item.Status.LABELED).count()
    count = {"items": 0, "boxes": 0}

    def counted(rows: Iterable[Row]) -> Iterable[Row]:
        for row in rows if progress is None else progress(rows, total):
            count["items"] += 1
            count["boxes"] += len(row.get("boxes", ()))
            yield row

    def text_chunks(rows: Iterable[Row]) -> Iterable[str]:
        return export_text_chunks(project=project, fmt=fmt, rows=rows)

    base, ending = f"{slugify(project.name) or 'project'}-labels", EXPORT_ENDINGS[fmt]
    text_name = base + ending
    zip_format = fmt in exports.ZIP_FORMATS
    with_images = images and not zip_format  # a text file, zipped with the images it names
    name = prefix + (base + ending.rsplit(".", 1)[0] + ".zip" if with_images else text_name)
    folder = paths.data_dir() / "exports" / f"project_{project.id}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    try:
        with tmp.open("wb") as out:
            if zip_format:
                export_zip_write(project=project, fmt=fmt, rows=counted(rows), out=out, images=images)
            elif with_images:
                _write_text_with_images(out, text_name, text_chunks, counted(rows))
            else:
                for chunk in text_chunks(counted(rows)):
                    out.write(chunk.encode("utf-8"))
        final = folder / name
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary: dict[str, Any] = {
        "items": count["items"],
        "format": fmt,
        "images": fmt == "imagefolder" or images,
        "bytes": final.stat().st_size,
    }
    if kind.boxes:
        summary["boxes"] = count["boxes"]
    return summary, final.relative_to(paths.data_dir()).as_posix()


def _write_text_with_images(
    out: BinaryIO, text_name: str, text_chunks: Callable[[Iterable[Row]], Iterable[str]], rows: Iterable[Row]
) -> None:
    """A zip of ``images/<item id>-<name>`` files and the labels file naming them, in one pass: the
    labels text waits in a temporary file while the images are written."""
    with ZipWriter(out) as archive, tempfile.TemporaryFile() as text:

        def placed() -> Iterable[Row]:
            for row in rows:
                item = row["item"]
                stem = exports.name_parts(row["filename"])[0] or "image"
                member = f"images/{item.id}-{stem}{exports.name_parts(item.file.name)[1]}"
                with open_item_file(item) as src:
                    archive.add(member, src)
                yield {**row, "filename": member}

        for chunk in text_chunks(placed()):
            text.write(chunk.encode("utf-8"))
        text.seek(0)
        archive.add(text_name, text)
