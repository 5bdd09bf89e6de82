"""Reading request input the same way everywhere: ids and flags in query parameters, a setting's
range, a class name, and the page size of lists."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from annotator.class_names import LABEL_CLASS_NAME_MAX_LENGTH, label_class_name_clean
from annotator.models import Range

#: The largest id: the database's ids are signed 64-bit integers, and a larger number in a query
#: fails in the database driver (``OverflowError``) instead of matching nothing.
ID_MAX = 2**63 - 1

EXCLUDE = OpenApiParameter("exclude", str, description="Comma-separated ids of items the caller already holds.")


def _query_id(part: str, name: str, expected: str) -> int:
    try:
        value = int(part)
    except ValueError:
        value = 0
    if not 1 <= value <= ID_MAX:
        raise ValidationError({name: [f"{expected}, from 1 to {ID_MAX}; got {part[:30]!r}."]})
    return value


def query_ids(request: Request, name: str, *, limit: int = 100) -> list[int]:
    """The query parameter ``name`` as a comma-separated list of item ids (the first ``limit``).
    Every integer a query parameter carries is read here or by ``query_id``: anything but whole
    numbers from 1 to ``ID_MAX`` is a 400 naming the parameter."""
    expected = "A comma-separated list of item ids (whole numbers)"
    parts = request.query_params.get(name, "").split(",")
    return [_query_id(part, name, expected) for part in parts if part.strip()][:limit]


def query_id(request: Request, name: str, *, what: str) -> int | None:
    """The query parameter ``name`` as one id (``None`` when absent or empty), checked as ``query_ids``."""
    value = request.query_params.get(name, "")
    return _query_id(value, name, f"A {what} (a whole number)") if value.strip() else None


def flag_param(request: Request, name: str) -> bool:
    """A yes/no query parameter: ``1``, ``true`` or ``yes`` is yes."""
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def range_field(bounds: Range, **kwargs: Any) -> serializers.IntegerField:
    """An integer field with the bounds and the message of a setting's one range (``models.Range``)."""
    return serializers.IntegerField(
        min_value=bounds.low, max_value=bounds.high, error_messages=bounds.error_messages, **kwargs
    )


@extend_schema_field({"type": "string", "maxLength": LABEL_CLASS_NAME_MAX_LENGTH})
class ClassNameField(serializers.Field):
    """A class name as sent: text only, as everywhere else (no number or object becomes a name); the
    service checks it by the one rule (``models.label_class_name_clean``), which also says this."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            try:
                label_class_name_clean(data)
            except DjangoValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return data

    def to_representation(self, value: Any) -> str:
        return value


class Pagination(PageNumberPagination):
    """Lists of items and annotations: 100 a page, up to 1000 with ``page_size``."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
