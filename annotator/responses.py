"""HTTP responses shared by the pages and the API: exports and item images."""

from __future__ import annotations

import re
import tempfile
from typing import cast

from django.http import FileResponse, HttpResponse, StreamingHttpResponse

from annotator.formats import exports, renditions
from annotator.kinds import kind_of
from annotator.models import Item, Project
from annotator.services.exports import EXPORT_ENDINGS, export_rows_of, export_text_chunks, export_zip_write

EXPORT_FORMATS = exports.EXPORT_FORMATS
TEXT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "coco": "application/json"}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "project"


def export_response(
    project: Project, fmt: str, *, include_ambiguous: bool = False
) -> HttpResponse | StreamingHttpResponse:
    """The project's labeled items as a CSV, JSON Lines or COCO stream, or a zip: ImageFolder on
    classification projects, YOLO or Pascal VOC (labels only) on box projects (items reviewed as
    ambiguous only with ``include_ambiguous``). A format the project's kind lacks is a ``ValueError``
    naming the valid ones."""
    problem = exports.export_format_problem(fmt, kind_of(project))
    if problem is not None:
        raise ValueError(problem)
    rows = export_rows_of(project=project, include_ambiguous=include_ambiguous)
    filename = f"{_slug(project.name)}-labels{EXPORT_ENDINGS[fmt]}"
    if fmt in TEXT_CONTENT_TYPES:
        chunks = export_text_chunks(project=project, fmt=fmt, rows=rows)
        response = StreamingHttpResponse(chunks, content_type=TEXT_CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the FileResponse
    export_zip_write(project=project, fmt=fmt, rows=rows, out=spool)
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=filename, content_type="application/zip")


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
