"""Task kinds: what an answer is for each ``Project.kind``, in one place per kind.

``kind_of(project)`` (or ``KINDS[name]``) gives the rules every layer asks: services check answers
and add them up with it, selectors turn stored answers into training targets, the API shows answers
with it, and the ``ml`` library gets its ``multi_label`` switch from it. A new kind is one module
here with a ``Kind`` subclass, registered in ``KINDS``.
"""

from __future__ import annotations

from typing import Protocol

from annotator.kinds.base import Answer, AnswerError, ClassOrder, Consensus, Kind
from annotator.kinds.boxes import Boxes
from annotator.kinds.classification import Classification
from annotator.kinds.multi_label import MultiLabel

KINDS: dict[str, Kind] = {kind.name: kind for kind in (Classification(), MultiLabel(), Boxes())}


class _HasKind(Protocol):
    kind: str


def kind_of(project: _HasKind) -> Kind:
    """The rules of ``project``'s task kind."""
    return KINDS[project.kind]


__all__ = ["KINDS", "Answer", "AnswerError", "ClassOrder", "Consensus", "Kind", "kind_of"]
