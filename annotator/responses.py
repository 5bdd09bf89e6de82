"""HTTP responses shared by the pages and the API: exports and item images."""

from __future__ import annotations

import re
import tempfile
from typing import cast

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpResponse, StreamingHttpResponse

from annotator.formats import exports, renditions
from annotator.models import Item, Project
from annotator.selectors.classes import project_classes
from annotator.selectors.exports import export_rows

EXPORT_FORMATS = exports.EXPORT_FORMATS


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "project"


def export_response(
    project: Project, fmt: str, *, include_ambiguous: bool = False
) -> HttpResponse | StreamingHttpResponse:
    """The project's labeled items as a CSV, JSON Lines or COCO stream, or an ImageFolder zip
    (items reviewed as ambiguous only with ``include_ambiguous``)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; valid formats: {', '.join(EXPORT_FORMATS)}.")
    rows = export_rows(project=project, include_ambiguous=include_ambiguous)
    base = f"{_slug(project.name)}-labels"
    if fmt == "csv":
        response = StreamingHttpResponse(exports.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{base}.csv"'
        return response
    if fmt == "jsonl":
        response = StreamingHttpResponse(exports.jsonl_lines(rows), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{base}.jsonl"'
        return response
    if fmt == "coco":
        classes = [c.name for c in project_classes(project=project)]
        response = StreamingHttpResponse(exports.coco_chunks(rows, classes), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{base}-coco.json"'
        return response
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the FileResponse
    exports.write_imagefolder((exports.with_stored_suffix(r) for r in rows), spool, open_item_file)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=f"{base}.zip", content_type="application/zip")


def open_item_file(item: Item) -> FieldFile:
    return item.file.open("rb")


def item_image_response(item: Item) -> FileResponse:
    """The item's image as browsers can display it (a PNG rendition of a TIFF), its type from its name."""
    storage = item.file.storage
    name = cast(str, item.file.name)  # a stored item always has its file
    response = FileResponse(storage.open(renditions.display_name(storage, name), "rb"))
    response["Cache-Control"] = "private, max-age=86400"
    return response


def item_thumbnail_response(item: Item) -> FileResponse:
    """The item's thumbnail (JPEG, made once on the first request), for the data browser's grid."""
    storage = item.file.storage
    name = cast(str, item.file.name)
    response = FileResponse(storage.open(renditions.thumbnail_of(storage, name), "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
