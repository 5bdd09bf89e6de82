"""Health endpoints for load balancers and monitoring (the web process, the Celery workers), and
the error handlers that answer API clients in JSON."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _broker_ok() -> bool:
    from annotator.celery import app

    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        return True
    except Exception:
        return False


@never_cache
@require_GET
def web(request: HttpRequest) -> JsonResponse:
    """200 when this web process can reach its database; the broker is reported, not required
    (labeling goes on without it)."""
    database = _database_ok()
    body = {"status": "ok" if database else "error", "database": database}
    if request.GET.get("broker") is not None:
        body["broker"] = _broker_ok()
    return JsonResponse(body, status=200 if database else 503)


@never_cache
@require_GET
def workers(request: HttpRequest) -> JsonResponse:
    """200 with the workers that answered a ping within a second, per queue; 503 when none did."""
    from annotator.celery import app

    try:
        replies = app.control.ping(timeout=1.0)
        queues = app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception as exc:
        return JsonResponse({"status": "error", "error": f"broker unreachable: {exc}"}, status=503)
    names = sorted(name for reply in replies for name in reply)
    body = {
        "status": "ok" if names else "error",
        "workers": names,
        "queues": {name: sorted(q["name"] for q in queues.get(name, [])) for name in names},
    }
    return JsonResponse(body, status=200 if names else 503)


def api_aware_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 as JSON under ``/api/`` (API clients always get JSON), the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def api_aware_server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error; it has been logged."}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
