"""What every task kind provides: an answer is a set of classes, and a kind says how one is checked,
how several people's answers add up, what a model trains on, and how an answer reads in JSON.

An answer here is a tuple of class ids in the project's class order (``ClassOrder``); the database
stores it as one row per class (``models.AnnotationClass``, ``models.ItemClass``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

#: A stored answer: class ids, in class order; single-label answers hold one, multi-label ones any number.
Answer = tuple[int, ...]


class AnswerError(ValueError):
    """An answer that the project's kind does not accept; the message says what to send."""


@dataclass(frozen=True)
class ClassOrder:
    """A project's classes in output order. A class's position here is its model output and its
    training target, for training, publishing pre-labels and the review scan alike; ``LabelClass.index``
    only orders them (a deleted class leaves a gap in it)."""

    ids: list[int]
    names: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def position_of_id(self) -> dict[int, int]:
        return {class_id: i for i, class_id in enumerate(self.ids)}

    @property
    def position_of_name(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def answer(self, class_ids: Sequence[int]) -> Answer:
        """``class_ids`` as an answer: each once, in class order (ids of no class of the project dropped)."""
        position = self.position_of_id
        return tuple(sorted({c for c in class_ids if c in position}, key=position.__getitem__))

    def names_of(self, answer: Answer) -> list[str]:
        name = dict(zip(self.ids, self.names, strict=True))
        return [name[c] for c in answer if c in name]


@dataclass(frozen=True)
class Consensus:
    """What an item's answers add up to: the answer and the share of people who agree with it, 0..1."""

    answer: Answer
    agreement: float


class Kind:
    """A task kind's rules; one subclass per kind, one instance each (``annotator.kinds.kind_of``)."""

    #: The ``Project.kind`` value.
    name: ClassVar[str]
    #: The ``ml`` library's switch: independent sigmoid outputs trained with binary cross-entropy.
    multi_label: ClassVar[bool]
    #: Whether an answer is a list of object boxes (``kinds.boxes``), beside the set of classes present.
    boxes: ClassVar[bool] = False
    #: Keys the kind's labeling page uses beyond skip and undo (no class may have them as hotkeys).
    reserved_keys: ClassVar[frozenset[str]] = frozenset()

    def answer_check(self, *, label: Any, labels: Any, classes: ClassOrder) -> Answer:
        """The answer a client sent as ``label`` (a class name) or ``labels`` (a list of them); raises
        ``AnswerError`` saying what this kind takes."""
        raise NotImplementedError

    def consensus(self, answers: Sequence[Answer]) -> Consensus:
        """What several people's answers (at least one) add up to."""
        raise NotImplementedError

    def targets(self, answers: Sequence[Answer], classes: ClassOrder) -> np.ndarray:
        """Training targets for N answers: (N,) int64 class positions, or (N, C) float32 0/1 rows."""
        raise NotImplementedError

    def predicted(
        self, *, pred_label_id: int | None, pred_probs: Sequence[float] | None, classes: ClassOrder
    ) -> Answer:
        """The answer a model's pre-label stands for (its top class, or every class it gives ≥ 0.5)."""
        raise NotImplementedError

    def as_json(self, names: list[str] | None) -> dict[str, Any]:
        """An answer's class names as the API shows them: ``{"label": ..., "labels": ...}``, the field
        this kind does not use being ``None`` (as is the whole answer when there is none)."""
        raise NotImplementedError


def names_checked(names: Any, classes: ClassOrder) -> Answer:
    """The answer naming ``names`` (a list of class names), or ``AnswerError`` naming the unknown ones."""
    index = dict(zip(classes.names, classes.ids, strict=True))
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        raise AnswerError("Send 'labels' as a list of class names.")
    unknown = [name for name in names if name not in index]
    if unknown:
        raise AnswerError(f"Unknown labels {unknown}; valid labels: {', '.join(classes.names)}.")
    return classes.answer([index[name] for name in names])
