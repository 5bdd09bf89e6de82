"""Request-size limits with a readable answer: JSON ``{"detail"}`` for the API, a message on the page.

Django's own limits (``DATA_UPLOAD_MAX_MEMORY_SIZE``, ``DATA_UPLOAD_MAX_NUMBER_FILES``) end in a
bare "Bad Request (400)", and nothing bounds the files of a multipart body; this middleware
refuses a body over ``MAX_UPLOAD_BYTES`` before it is read and words both cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _reason(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return f"Too many files in one request; the limit is {limit:,}. Send them in a .zip or in batches.", 400
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request's form data is larger than {_size(limit)} (files are counted apart from it).", 413


def _refuse(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """JSON for the API; back to the referring page with the message for the pages."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    referer = request.META.get("HTTP_REFERER", "")
    host, secure = request.get_host(), request.is_secure()
    safe = url_has_allowed_host_and_scheme(referer, allowed_hosts={host}, require_https=secure)
    if referer and safe and hasattr(request, "_messages"):
        messages.error(request, message)
        return HttpResponseRedirect(referer)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class UploadLimitMiddleware:
    """Goes before ``CsrfViewMiddleware``, which reads the body of a POST."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_UPLOAD_BYTES:
            message = (
                f"The upload is {_size(length)}; the limit is {_size(settings.MAX_UPLOAD_BYTES)} per request. "
                "Send fewer files at a time, or import a server folder with manage.py import_images."
            )
            return _refuse(request, message, 413)
        if request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            try:
                request.POST  # noqa: B018 - parsed here, as CSRF would, to answer a limit error readably
            except (RequestDataTooBig, TooManyFilesSent) as exc:
                return _refuse(request, *_reason(exc))
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """The API parses its body in the view: limit errors raised there get the same answer."""
        if isinstance(exception, RequestDataTooBig | TooManyFilesSent):
            return _refuse(request, *_reason(exception))
        return None
