"""The next item leased to the caller, as ``/next`` serves it and as a label or a skip brings it back
with ``?next=1`` (one round trip per label)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from annotator.api import serializers as out
from annotator.api.inputs import flag_param, query_ids
from annotator.models import Project
from annotator.services.leasing import item_lease_next

NEXT = OpenApiParameter(
    "next",
    bool,
    description=(
        "1: store the answer, then lease the caller's next item (as /next, honouring exclude=) and return it "
        "under `next`; 204 (answer stored) when nothing is left."
    ),
)


def next_wanted(request: Request) -> list[int] | None:
    """``None`` unless the call asks for the next item too (``?next=1``); then the ids of ``exclude=``,
    read (400 if malformed) before the answer is stored."""
    return query_ids(request, "exclude") if flag_param(request, "next") else None


def next_item_data(
    request: Request, project: Project, exclude: list[int], *, answered: int | None = None
) -> dict[str, Any] | None:
    """Lease the caller's next item of ``project`` (leaving out ``exclude`` and ``answered``, the item
    just answered) and serialize it as ``/next`` does; ``None`` when the queue has nothing for them.
    A retry with the same ``exclude`` gets the same item back: the caller's own lease comes first."""
    left_out = [*exclude, answered] if answered is not None else exclude
    item = item_lease_next(project=project, user=request.user, exclude=left_out)  # type: ignore[arg-type]
    if item is None:
        return None
    return out.ItemOut(item, context={"project": project, "show_prelabel": project.show_prelabels}).data


class AnnotationNextOut(out.AnnotationOut):
    next = out.ItemOut(required=False, help_text="With ?next=1: the caller's next item, leased.")


class SkipNextOut(out.SkipOut):
    next = out.ItemOut(required=False, help_text="With ?next=1: the caller's next item, leased.")
