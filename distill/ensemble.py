"""The teacher: an ensemble of members and how their probabilities are combined.

Bucilua et al. 2006 §2 compress an ensemble built by ensemble selection; Hinton et
al. 2015 §2 average an ensemble's predictions, arithmetically or geometrically.
The members themselves live in ``members.py``; a recipe becomes a teacher in
``building.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ground.errors import UserError
from ground.probs import LOG_FLOOR, softmax

from .members import Member, check_inputs, check_probs, member_fingerprint, member_record

COMBINES = ("mean", "geometric", "weights")


def combine_probas(probas: list[np.ndarray], weights: np.ndarray, combine: str) -> np.ndarray:
    """Weighted arithmetic mean of probabilities, or geometric mean renormalized (Hinton 2015 §2)."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    if combine == "geometric":
        logp = sum(
            wi * np.log(np.maximum(p.astype(np.float64), LOG_FLOOR)) for wi, p in zip(w, probas)
        )
        return softmax(logp).astype(np.float32)
    return sum(wi * p.astype(np.float64) for wi, p in zip(w, probas)).astype(np.float32)


@dataclass
class Teacher:
    """The ensemble: members, their weights and how their probabilities are combined.

    ``combine``: ``mean`` = arithmetic mean weighted by ``weights`` (uniform unless
    ensemble selection set them), ``geometric`` = weighted mean of log-probabilities
    renormalized, ``weights`` = arithmetic mean with weights the user gave.
    """

    members: list[Member]
    weights: np.ndarray
    combine: str = "mean"
    num_classes: int | None = None
    selection: dict | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise UserError(
                "the teacher has no members. Give teacher.library, teacher.members or members=[...]."
            )
        if self.combine not in COMBINES:
            raise UserError(
                f"teacher.combine must be one of {', '.join(COMBINES)}; got {self.combine!r}."
            )
        names = [m.name for m in self.members]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(
                f"teacher member names must be unique; {dup} appear more than once. Rename them."
            )
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if (
            self.weights.shape != (len(self.members),)
            or (self.weights < 0).any()
            or self.weights.sum() <= 0
        ):
            raise UserError(
                f"teacher weights {self.weights.tolist()} must be {len(self.members)} non-negative "
                "numbers, not all zero (one per member)."
            )

    def active(self) -> list[tuple[Member, float]]:
        """Members with a non-zero weight (ensemble selection may drop some)."""
        return [(m, w) for m, w in zip(self.members, self.weights) if w > 0]

    def member_probas(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's checked probabilities on ``x`` (all members, including weight 0)."""
        x = check_inputs(x, "the teacher")
        return {
            m.name: check_probs(m.predict_proba(x), m.name, len(x), self.num_classes)
            for m in self.members
        }

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        act = self.active()
        probas = [check_probs(m.predict_proba(x), m.name, len(x), self.num_classes) for m, _ in act]
        return combine_probas(probas, np.array([w for _, w in act]), self.combine)

    def predict_proba(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The ensemble's probabilities, float32 ``[n, C]``, computed in batches."""
        x = check_inputs(x, "the teacher")
        if len(x) == 0:
            raise UserError("the teacher was asked to label 0 rows; check the transfer set.")
        return np.concatenate(
            [self._predict_batch(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    def fingerprint(self) -> str:
        """Stable hash of members' contents, weights and combine rule: the cache key's teacher half."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.combine.encode())
            for m, w in zip(self.members, self.weights):
                h.update(f"{m.name}|{m.kind}|{w:.12g}|{member_fingerprint(m)}".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def describe(self) -> dict:
        """The card's ``teacher`` record: members with kind, weight and measured size."""
        members, total = [], 0
        for m, w in zip(self.members, self.weights / self.weights.sum()):
            nbytes, how = m.serialized_bytes()
            members.append(
                {
                    "name": m.name,
                    "kind": m.kind,
                    "weight": round(float(w), 6),
                    "bytes": None if nbytes is None else int(nbytes),
                    "bytes_method": how,
                    **member_record(m),
                }
            )
            if w > 0 and nbytes is not None:
                total += int(nbytes)
        return {
            "combine": self.combine,
            "members": members,
            "bytes": total,
            "bytes_method": "sum of the serialized sizes of members with non-zero weight (see each "
            "member; one whose size could not be measured is left out)",
            "selection": self.selection,
        }
