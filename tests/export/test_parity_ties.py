"""Issue 34: an fp16 file failed the 0.999 gate on one holdout row of 600 where the student's two
classes were 0.0009 apart: float16 rounding flipped a tie the student itself could not break."""

from __future__ import annotations

import numpy as np

from export.parity import compare
from ground.probs import TIE


def test_a_row_the_student_calls_a_tie_agrees_on_either_class_and_is_counted():
    student = np.array([[0.5 + TIE / 4, 0.5 - TIE / 4], [0.9, 0.1], [0.2, 0.8]])
    flipped_tie = np.array([[0.5 - TIE / 4, 0.5 + TIE / 4], [0.9, 0.1], [0.2, 0.8]])
    p = compare(flipped_tie, student, threshold=0.999)
    assert p.agreement == 1.0 and p.passed and p.ties_excused == 1
    flipped_clear = np.array([[0.5 + TIE / 4, 0.5 - TIE / 4], [0.1, 0.9], [0.2, 0.8]])
    p = compare(flipped_clear, student, threshold=0.999)  # a clear row flipped is a disagreement
    assert p.agreement < 0.67 and not p.passed and p.ties_excused == 0
    three = np.array([[0.4, 0.4 - TIE / 2, 0.2 + TIE / 2]])
    third = np.array([[0.2, 0.3, 0.5]])  # the file picks a class outside the tie: disagrees
    assert compare(third, three, 0.99).agreement == 0.0
