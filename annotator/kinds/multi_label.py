"""Any number of classes per image: an answer is a set (possibly empty: none applies); a class is in
the consensus when at least half of the people chose it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from annotator.kinds.base import Answer, AnswerError, ClassOrder, Consensus, Kind, names_checked


class MultiLabel(Kind):
    name = "multi_label"
    multi_label = True

    def answer_check(self, *, label: Any, labels: Any, classes: ClassOrder) -> Answer:
        if labels is None:
            raise AnswerError("This project is multi-label: send 'labels', a list of class names (may be empty).")
        return names_checked(labels, classes)

    def consensus(self, answers: Sequence[Answer]) -> Consensus:
        """Each class chosen by at least half of the people; agreement is the mean, over the classes
        anyone chose, of the share of people who agree with the consensus on that class (1 when nobody
        chose any)."""
        chosen = Counter(c for answer in answers for c in set(answer))
        n = len(answers)
        answer = tuple(c for c in dict.fromkeys(c for a in answers for c in a) if 2 * chosen[c] >= n)
        shares = [max(k, n - k) / n for k in chosen.values()]
        return Consensus(answer=tuple(sorted(answer)), agreement=sum(shares) / len(shares) if shares else 1.0)

    def targets(self, answers: Sequence[Answer], classes: ClassOrder) -> np.ndarray:
        """(N, C) float32 0/1 rows; an empty answer is a row of zeros."""
        position = classes.position_of_id
        rows = np.zeros((len(answers), len(classes)), dtype=np.float32)
        for i, answer in enumerate(answers):
            rows[i, [position[c] for c in answer if c in position]] = 1.0
        return rows

    def predicted(
        self, *, pred_label_id: int | None, pred_probs: Sequence[float] | None, classes: ClassOrder
    ) -> Answer:
        return tuple(c for c, p in zip(classes.ids, pred_probs or [], strict=False) if p >= 0.5)

    def as_json(self, names: list[str] | None) -> dict[str, Any]:
        return {"label": None, "labels": names}
