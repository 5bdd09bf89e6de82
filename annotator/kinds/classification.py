"""One class per image: an answer is a set of one class; people's answers add up by majority vote."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from annotator.kinds.base import Answer, AnswerError, ClassOrder, Consensus, Kind


class Classification(Kind):
    name = "classification"
    multi_label = False

    def answer_check(self, *, label: Any, labels: Any, classes: ClassOrder) -> Answer:
        if label is None:
            raise AnswerError("Send 'label', the class name.")
        index = dict(zip(classes.names, classes.ids, strict=True))
        if not isinstance(label, str) or label not in index:
            raise AnswerError(f"Unknown label {label!r}; valid labels: {', '.join(classes.names)}.")
        return (index[label],)

    def consensus(self, answers: Sequence[Answer]) -> Consensus:
        """The majority class (the earliest of those tied); agreement is the share of votes it got."""
        votes = Counter(answer[0] for answer in answers if answer)
        if not votes:
            return Consensus(answer=(), agreement=1.0)
        top, n = votes.most_common(1)[0]
        return Consensus(answer=(top,), agreement=n / sum(votes.values()))

    def targets(self, answers: Sequence[Answer], classes: ClassOrder) -> np.ndarray:
        position = classes.position_of_id
        return np.array([position[answer[0]] for answer in answers], dtype=np.int64)

    def predicted(
        self, *, pred_label_id: int | None, pred_probs: Sequence[float] | None, classes: ClassOrder
    ) -> Answer:
        return () if pred_label_id is None else (pred_label_id,)

    def as_json(self, names: list[str] | None) -> dict[str, Any]:
        return {"label": names[0] if names else None, "labels": None}
