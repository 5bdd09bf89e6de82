"""HTTP responses shared by the pages and the API: exports and item images."""

from __future__ import annotations

import re
import tempfile
from pathlib import PurePosixPath
from typing import cast
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import Storage
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from annotator.formats import exports, renditions
from annotator.kinds import kind_of
from annotator.models import Item, Project
from annotator.services.exports import EXPORT_ENDINGS, export_rows_of, export_text_chunks, export_zip_write
from annotator.services.imports import item_display_ensure

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


#: Content types of what image responses send, by the stored file's suffix.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".tif": "image/tiff",
}
#: An item's image never changes under its URL (which carries its content hash): browsers keep it.
IMMUTABLE = "private, max-age=31536000, immutable"


def stored_file_response(storage: Storage, name: str, *, filename: str | None = None) -> HttpResponse | FileResponse:
    """The stored file ``name`` as the ``SENDFILE`` setting says: streamed by Django, or an empty
    response whose ``X-Accel-Redirect`` (nginx: ``SENDFILE_URL`` + ``name``) or ``X-Sendfile`` (the
    file's path) header has the proxy send it. The caller has checked who may see it. ``filename``:
    sent as an attachment of that name."""
    content_type = IMAGE_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")
    mode = settings.SENDFILE
    response: HttpResponse | FileResponse
    if mode == "django":
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    elif mode == "x-accel-redirect":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = quote(settings.SENDFILE_URL.rstrip("/") + "/" + name)
    else:
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = storage.path(name)
    if filename is not None:
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = IMMUTABLE
    return response


def item_image_response(item: Item, *, original: bool = False) -> HttpResponse | FileResponse:
    """What the pages show of the item: its display rendition (made on import: shrunk, or turned
    into a format browsers show), else the stored file; ``original``: the stored file as uploaded,
    as an attachment."""
    storage = item.file.storage
    name = cast(str, item.file.name)  # a stored item always has its file
    if original:
        return stored_file_response(storage, name, filename=item.original_name)
    return stored_file_response(storage, item_display_ensure(item) or name)


def item_thumbnail_response(item: Item) -> HttpResponse | FileResponse:
    """The item's thumbnail (JPEG, made on import; on the first request for older items), for the data browser."""
    storage = item.file.storage
    return stored_file_response(storage, renditions.thumbnail_of(storage, cast(str, item.file.name)))
