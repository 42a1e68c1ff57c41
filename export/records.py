"""What the export stage records: one ArtifactRecord per file, gathered in an ExportReport.

Field names follow docs/run-directory.md (``exports.json``); records are plain
dataclasses so every step returns a value that can be inspected and written as JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "tinyship.exports/1"


@dataclass
class TensorSpec:
    """One model input or output as the runtime sees it (dtype after quantization)."""

    shape: list[int]
    dtype: str
    layout: str | None = None
    kind: str | None = None
    quantization: dict[str, float] | None = None
    dynamic_batch: bool = False
    #: Why the tensor has this dtype (static int8 files: int8 or float32 I/O, export/int8_io.py).
    note: str | None = None


@dataclass
class Parity:
    """Agreement of an artifact with the torch student on the holdout set."""

    n: int
    agreement: float
    max_abs_prob_err: float
    threshold: float
    passed: bool
    #: Rows the student calls a tie (top two within ground.probs.TIE) where the file picked the
    #: other of the two: counted as agreeing, and counted here.
    ties_excused: int = 0


@dataclass
class ArtifactRecord:
    """One exported file and everything checked about it (docs/run-directory.md)."""

    file: str
    format: str
    precision: str
    bytes: int | None = None
    sha256: str | None = None
    input: TensorSpec | None = None
    output: TensorSpec | None = None
    parity: Parity | None = None
    accuracy: float | None = None
    runtime: str | None = None
    #: Format facts (Format.facts): the runtime family and the device classes that run the file.
    runtime_family: str | None = None
    runs_on: list[str] = field(default_factory=list)
    not_on: dict[str, str] = field(default_factory=dict)
    tflm_arena_bytes: int | None = None
    tflm_parity: Parity | None = None
    excluded_layers: list[str] = field(default_factory=list)
    layer_errors: list[dict[str, Any]] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    structure: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: True when the file was not made because an optional dependency is missing (recorded, not a gate failure).
    skipped: bool = False

    @property
    def passed(self) -> bool | None:
        """True/False when a runtime checked it, None when nothing could run it."""
        if self.skipped:
            return None
        if self.error is not None:
            return False
        gates = [p for p in (self.parity, self.tflm_parity) if p is not None]
        if not gates:
            return None
        return all(p.passed for p in gates)

    def failure(self) -> str | None:
        """A one-line reason this artifact fails the gate, or None."""
        if self.skipped:
            return None
        if self.error is not None:
            return f"{self.file}: {self.error}"
        msgs = []
        for label, p in (("agreement", self.parity), ("TFLite Micro agreement", self.tflm_parity)):
            if p is not None and not p.passed:
                msgs.append(
                    f"{label} {p.agreement:.4f} < threshold {p.threshold} (max abs prob err {p.max_abs_prob_err:.4f})"
                )
        return f"{self.file}: " + "; ".join(msgs) if msgs else None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


@dataclass
class ExportReport:
    """Everything ``export.run`` did: written as ``export/exports.json``."""

    run: str
    card_sha256: str
    artifacts: list[ArtifactRecord]
    export_dir: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[str]:
        return [f for a in self.artifacts if (f := a.failure()) is not None]

    def artifact(self, file_or_key: str) -> ArtifactRecord:
        """Look an artifact up by file name or by ``format:precision``."""
        for a in self.artifacts:
            if file_or_key in (a.file, f"{a.format}:{a.precision}"):
                return a
        raise KeyError(file_or_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run": self.run,
            "card_sha256": self.card_sha256,
            "passed": self.passed,
            "settings": self.settings,
            "artifacts": [a.to_json() for a in self.artifacts],
        }
