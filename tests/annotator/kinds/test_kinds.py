"""The task kinds' rules, as plain functions over answers (tuples of class ids): checking what a
client sent, adding people's answers up, training targets, what a pre-label stands for, the JSON."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.kinds import KINDS, AnswerError, ClassOrder, Consensus, kind_of
from annotator.models import Project, TaskKind

CLASSES = ClassOrder(ids=[11, 7, 30], names=["cat", "dog", "outdoor"])  # ids not in class order
SINGLE, MULTI = KINDS["classification"], KINDS["multi_label"]


def test_every_task_kind_has_its_rules():
    assert set(KINDS) == set(TaskKind.values)
    assert kind_of(Project(kind="multi_label")) is MULTI and kind_of(Project()) is SINGLE
    assert (SINGLE.multi_label, MULTI.multi_label) == (False, True)


def test_a_single_label_answer_is_one_known_class():
    assert SINGLE.answer_check(label="dog", labels=None, classes=CLASSES) == (7,)
    with pytest.raises(AnswerError, match="Send 'label'"):
        SINGLE.answer_check(label=None, labels=["dog"], classes=CLASSES)
    with pytest.raises(AnswerError, match="Unknown label 'cow'; valid labels: cat, dog, outdoor"):
        SINGLE.answer_check(label="cow", labels=None, classes=CLASSES)


def test_a_multi_label_answer_is_a_set_in_class_order_and_may_be_empty():
    assert MULTI.answer_check(label=None, labels=["outdoor", "cat", "cat"], classes=CLASSES) == (11, 30)
    assert MULTI.answer_check(label=None, labels=[], classes=CLASSES) == ()
    with pytest.raises(AnswerError, match="send 'labels'"):
        MULTI.answer_check(label="cat", labels=None, classes=CLASSES)
    with pytest.raises(AnswerError, match=r"Unknown labels \['bird'\]"):
        MULTI.answer_check(label=None, labels=["cat", "bird"], classes=CLASSES)


def test_single_label_consensus_is_the_majority_and_a_tie_goes_to_the_first_vote():
    assert SINGLE.consensus([(7,), (11,), (7,)]) == Consensus(answer=(7,), agreement=pytest.approx(2 / 3))
    assert SINGLE.consensus([(11,), (7,)]).answer == (11,)
    assert SINGLE.consensus([(30,)]) == Consensus(answer=(30,), agreement=1.0)


def test_multi_label_consensus_takes_each_class_half_the_people_chose():
    result = MULTI.consensus([(11, 30), (11,), (7,)])
    assert result.answer == (11,)  # cat by 2 of 3; dog and outdoor by 1 of 3
    assert result.agreement == pytest.approx(np.mean([2 / 3, 2 / 3, 2 / 3]))
    assert MULTI.consensus([(11,), (7,)]).answer == (7, 11)  # each by half
    assert MULTI.consensus([(), ()]) == Consensus(answer=(), agreement=1.0)


def test_targets_are_positions_or_zero_one_rows():
    np.testing.assert_array_equal(SINGLE.targets([(7,), (30,), (11,)], CLASSES), [1, 2, 0])
    assert SINGLE.targets([(7,)], CLASSES).dtype == np.int64
    rows = MULTI.targets([(11, 30), ()], CLASSES)
    assert rows.dtype == np.float32 and rows.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_a_prelabel_stands_for_its_class_or_every_class_at_half_or_more():
    assert SINGLE.predicted(pred_label_id=7, pred_probs=[0.2, 0.7, 0.1], classes=CLASSES) == (7,)
    assert SINGLE.predicted(pred_label_id=None, pred_probs=None, classes=CLASSES) == ()
    assert MULTI.predicted(pred_label_id=11, pred_probs=[0.9, 0.5, 0.49], classes=CLASSES) == (11, 7)


def test_answers_show_as_the_api_always_showed_them():
    assert SINGLE.as_json(["dog"]) == {"label": "dog", "labels": None}
    assert SINGLE.as_json(None) == SINGLE.as_json([]) == {"label": None, "labels": None}
    assert MULTI.as_json(["cat", "outdoor"]) == {"label": None, "labels": ["cat", "outdoor"]}
    assert MULTI.as_json([]) == {"label": None, "labels": []} and MULTI.as_json(None)["labels"] is None


def test_class_order_turns_ids_into_answers_and_names():
    assert CLASSES.answer([30, 11, 30, 99]) == (11, 30)  # once each, in class order, unknown ids dropped
    assert CLASSES.names_of((11, 30)) == ["cat", "outdoor"]
