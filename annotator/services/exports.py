"""Export files: a project's labels written to a file under ``DATA_DIR/exports/project_<id>/`` in one
of the formats of ``annotator.formats.exports``, with the image files zipped alongside on request.
Written under a temporary name and renamed, so a reader sees the whole file or none."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from django.utils.text import slugify

from annotator import paths
from annotator.formats import exports
from annotator.formats.zipstream import ZipWriter
from annotator.models import Item, Project, ReviewStatus
from annotator.selectors.classes import project_classes
from annotator.selectors.exports import export_rows

Row = dict[str, Any]


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
    """Write the project's labels as ``fmt`` (``csv``, ``jsonl``, ``coco`` or ``imagefolder``) to a file
    whose name starts with ``prefix``; ``images`` zips the image files alongside the labels file.
    ``progress(rows, total)`` may wrap the rows as they are written, to report how far it got.
    Returns the summary (``items``, ``format``, ``images``, ``bytes``) and the file's path under ``DATA_DIR``."""
    rows: Iterable[Row] = export_rows(project=project, include_ambiguous=include_ambiguous)
    if only_reviewed:
        reviewed = {ReviewStatus.REVIEWED, ReviewStatus.AMBIGUOUS}
        rows = (row for row in rows if row["item"].review_status in reviewed)
    total = Item.objects.filter(project=project, status=Item.Status.LABELED).count()
    count = {"items": 0}

    def counted(rows: Iterable[Row]) -> Iterable[Row]:
        for row in rows if progress is None else progress(rows, total):
            count["items"] += 1
            yield row

    def text_chunks(rows: Iterable[Row]) -> Iterable[str]:
        if fmt == "csv":
            return exports.csv_lines(rows)
        if fmt == "jsonl":
            return exports.jsonl_lines(rows)
        return exports.coco_chunks(rows, [c.name for c in project_classes(project=project)])

    text_name = f"{slugify(project.name) or 'project'}-labels" + {"csv": ".csv", "jsonl": ".jsonl"}.get(
        fmt, "-coco.json"
    )
    zipped = fmt == "imagefolder" or images
    name = prefix + (text_name.rsplit(".", 1)[0] + ".zip" if zipped else text_name)
    folder = paths.data_dir() / "exports" / f"project_{project.id}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    try:
        with tmp.open("wb") as out:
            if fmt == "imagefolder":
                exports.write_imagefolder(
                    (exports.with_stored_suffix(r) for r in counted(rows)), out, lambda item: item.file.open("rb")
                )
            elif zipped:
                _write_text_with_images(out, text_name, text_chunks, counted(rows))
            else:
                for chunk in text_chunks(counted(rows)):
                    out.write(chunk.encode("utf-8"))
        final = folder / name
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    summary = {"items": count["items"], "format": fmt, "images": zipped, "bytes": final.stat().st_size}
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
                with item.file.open("rb") as src:
                    archive.add(member, src)
                yield {**row, "filename": member}

        for chunk in text_chunks(placed()):
            text.write(chunk.encode("utf-8"))
        text.seek(0)
        archive.add(text_name, text)
