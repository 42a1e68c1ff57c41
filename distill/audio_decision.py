"""The decision rule a keyword spotter ships with (``data.decision``; the card's ``input.decision``).

A model scores one window; a device has to say *when a keyword was heard*. The rule: one
inference every ``hop_ms`` (the window slides by that much; a multiple of the front-end's
hop, so a ring of frames serves every inference), the posteriors averaged over the last
``smooth`` inferences (fewer at the start of a stream), a keyword declared when its averaged
posterior is the largest of the keywords' and at least ``threshold``, and then nothing
declared for ``refractory_ms`` (one word is one decision). With ``votes`` > 0 the keyword must
also have been the top class (of all classes) in at least ``votes`` of those ``smooth``
inferences: a word holds the top for several hops in a row, a burst of noise rarely does (rule
T36e, benchmarks/RESULTS.notes.md). ``_silence_`` and ``_unknown_`` never fire; they take
probability away from the keywords.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from ground.errors import UserError
from ground.recipe import Field, validate

DECISION_FIELDS: dict[str, Field] = {
    "hop_ms": Field(
        float, 100.0, min=1.0, doc="one inference every hop_ms (a multiple of the front-end's hop)"
    ),
    "smooth": Field(
        int, 3, min=1, max=100, doc="posteriors averaged over the last this many inferences"
    ),
    "threshold": Field(
        float, 0.7, min=0.0, max=1.0, doc="smoothed keyword posterior that declares it"
    ),
    "refractory_ms": Field(
        float, 1000.0, min=0.0, doc="after a decision, none for this long (one word, one decision)"
    ),
    "votes": Field(
        int,
        0,
        min=0,
        max=100,
        doc="the keyword must also be the top class in at least this many of the last smooth "
        "inferences (0: the average alone decides)",
    ),
    "choose": Field(
        str,
        "fixed",
        choices=("fixed", "validation"),
        doc="fixed: ship smooth, threshold and votes as given; validation: the trained student "
        "picks its own on the validation split's streams by rule T36f (<= 2% wrong keywords, "
        "<= 1 false alarm per hour at 20 and 10 dB, median latency <= 300 ms; then the best "
        "detection at 10 dB), and the card says how (input.decision.chosen)",
    ),
    "choose_minutes": Field(
        float,
        180.0,
        min=1.0,
        doc="with choose: validation, minutes of background per SNR in the validation streams "
        "(the false-alarm bound needs hours to be measured)",
    ),
}


@dataclass(frozen=True)
class DecisionRule:
    """Smoothing, threshold and refractory period over a stream of posteriors."""

    hop_ms: float = 100.0
    smooth: int = 3
    threshold: float = 0.7
    refractory_ms: float = 1000.0
    votes: int = 0
    choose: str = "fixed"
    choose_minutes: float = 180.0

    @classmethod
    def from_section(cls, section: dict | None, frame_hop_ms: float) -> DecisionRule:
        """``data.decision`` validated; the hop must be whole front-end frames."""
        rule = cls(**validate("data.decision", section, DECISION_FIELDS))
        if rule.votes > rule.smooth:
            raise UserError(
                f"recipe key 'data.decision.votes' is {rule.votes}, more than the {rule.smooth} "
                f"inferences 'data.decision.smooth' keeps; use at most {rule.smooth}, or 0."
            )
        frames = rule.hop_ms / frame_hop_ms
        if abs(frames - round(frames)) > 1e-6 or round(frames) < 1:
            raise UserError(
                f"recipe key 'data.decision.hop_ms' is {rule.hop_ms:g}; it must be a whole number "
                f"of front-end hops ({frame_hop_ms:g} ms), e.g. {5 * frame_hop_ms:g}."
            )
        return rule

    @property
    def refractory_steps(self) -> int:
        """Inferences after a decision during which no other is declared."""
        return int(np.ceil(self.refractory_ms / self.hop_ms - 1e-9))

    def card(self, labels: list[str], keywords: list[int], frame_hop_ms: float) -> dict:
        """``input.decision``: the rule in numbers and in words, for the card and the manifest."""
        return {
            **asdict(self),
            "hop_frames": int(round(self.hop_ms / frame_hop_ms)),
            "inferences_per_second": round(1000.0 / self.hop_ms, 4),
            "refractory_inferences": self.refractory_steps,
            "keywords": [labels[i] for i in keywords],
            "never_fire": [labels[i] for i in range(len(labels)) if i not in keywords],
            "rule": (
                f"every {self.hop_ms:g} ms score the last window; average the softmax "
                f"posteriors of the last {self.smooth} inferences; declare the keyword with the "
                f"largest average if it is >= {self.threshold:g}"
                + (
                    f" and it was the top class (of all classes) in at least {self.votes} of "
                    f"those {self.smooth} inferences"
                    if self.votes
                    else ""
                )
                + f"; then declare nothing for {self.refractory_ms:g} ms"
            ),
        }

    def decider(self, keywords: list[int]) -> Decider:
        return Decider(self, keywords)

    def decide(self, probs: np.ndarray, keywords: list[int]) -> list[tuple[int, int]]:
        """(inference index, class) of every decision over posteriors [T, classes]."""
        d = self.decider(keywords)
        out = []
        for t, p in enumerate(np.asarray(probs, dtype=np.float64)):
            c = d.step(p)
            if c is not None:
                out.append((t, c))
        return out


class Decider:
    """The rule as a device runs it: one posterior vector in per inference, a class or None out."""

    def __init__(self, rule: DecisionRule, keywords: list[int]) -> None:
        if not keywords:
            raise UserError("the decision rule needs at least one keyword class.")
        self.rule, self.keywords = rule, np.asarray(keywords, dtype=np.int64)
        self.recent: deque[np.ndarray] = deque(maxlen=rule.smooth)
        self.tops: deque[int] = deque(maxlen=rule.smooth)  # each inference's top class
        self.quiet = 0  # inferences left in the refractory period

    def step(self, p: np.ndarray) -> int | None:
        p = np.asarray(p, dtype=np.float64)
        self.recent.append(p)
        self.tops.append(int(np.argmax(p)))
        if self.quiet > 0:
            self.quiet -= 1
            return None
        avg = np.mean(self.recent, axis=0)[self.keywords]
        k = int(np.argmax(avg))
        if avg[k] < self.rule.threshold:
            return None
        if self.rule.votes and self.tops.count(int(self.keywords[k])) < self.rule.votes:
            return None
        self.quiet = self.rule.refractory_steps
        return int(self.keywords[k])
