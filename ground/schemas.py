"""One declared schema per run-directory record, checked on every read (issues 38 and 41).

card.json, exports.json, profile.json and ship/manifest.json are written by tinyship, but
a reader cannot know that: a hand edit, a bit flip or another tool can leave a field of
the wrong type (``artifacts[0].runtime: true``), out of range (``not_on: 1e308``) or a
value no code path expects. ``ground.rundir.read_json`` checks each of these files
against its schema here before any stage uses it, so such a file is a UserError naming
the file, the field and the command that rewrites it (exit 2), never a crash deep inside
a stage (exit 3). Only the fields readers interpret are declared; docs/run-directory.md
describes them. Presence is checked by the stage that needs a key (a ``profile FILE``
run has no labels); type and range wherever the key is present.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import UserError
from .record_types import (
    Check,
    Mismatch,
    anything,
    count,
    either,
    flag,
    items,
    mapping,
    number,
    record,
    text,
)

HEX64 = text(pattern=r"[0-9a-f]{64}")
NAME = text(max_len=255)
PROB = number(0.0, 1.0)
BIG = 1e12  # ms, seconds: anything larger is not a measurement
BYTES = count(2.0**50)
MAX_ELEMENTS = 2**31  # elements of one tensor: a figure past this is not a student's input


def _shape(v: Any, path: str) -> None:
    """A tensor shape: a list of at most 16 positive ints whose product stays bounded."""
    if v is None:
        return
    items(number(1, MAX_ELEMENTS, integer=True), max_len=16)(v, path)
    if math.prod(v) > MAX_ELEMENTS:
        raise Mismatch(path, v, f"a shape of at most {MAX_ELEMENTS} elements")


SHAPE = _shape
QUANT = record(
    {"scale": number(1e-30, 1e30), "zero_point": number(-(2**31), 2**31, integer=True)},
    ("scale", "zero_point"),
    null=True,
)
TENSOR = record(
    {
        "name": text(null=True),
        "shape": SHAPE,
        "dtype": text(max_len=64, null=True),
        "layout": text(max_len=64, null=True),
        "kind": text(max_len=64, null=True),
        "quantization": QUANT,
        "dynamic_batch": flag(null=True),
        "raw": flag(null=True),
        "columns": items(text(), null=True),
        "network_input_shape": SHAPE,
    },
    null=True,
)
METRIC = record(
    {
        "accuracy": number(0.0, 1.0, null=True),
        "nll": number(0.0, BIG, null=True),
        "agreement_with_teacher": number(0.0, 1.0, null=True),
        "n": count(null=True),
    },
    null=True,
)
PARITY = record(
    {
        "n": count(),
        "agreement": PROB,
        "max_abs_prob_err": number(0.0, 1.0),
        "threshold": PROB,
        "passed": flag(),
    },
    ("n", "agreement", "max_abs_prob_err", "passed"),
    null=True,
)

CARD = record(
    {
        "schema": text(max_len=64),
        "run": NAME,
        "task": text(),
        "input": TENSOR,
        "output": record(
            {"name": text(null=True), "kind": text(null=True), "num_classes": count(1_000_000)},
            null=True,
        ),  # fmt: skip
        "labels": items(
            either(text(max_len=1000), number(), expected="a label"), null=True, max_len=1_000_000
        ),  # fmt: skip
        "student": record(
            {
                "arch": text(null=True),
                "params": count(null=True),
                "macs": count(null=True),
                "bytes": count(null=True),
                "spec": mapping(anything, null=True),
                "layers": items(mapping(anything), null=True),
            },
            null=True,
        ),  # fmt: skip
        "teacher": record(
            {
                "combine": text(null=True),
                "bytes": count(null=True),
                "members": items(
                    record(
                        {
                            "name": text(),
                            "kind": text(null=True),
                            "weight": number(0, BIG, null=True),
                            "bytes": count(null=True),
                        }
                    ),
                    null=True,
                ),
            },
            null=True,
        ),  # fmt: skip
        "metrics": record(
            {
                "holdout": record(
                    {
                        "n": count(null=True),
                        "teacher": METRIC,
                        "student": METRIC,
                        "baseline": METRIC,
                        "members": mapping(METRIC, null=True),
                    },
                    null=True,
                )
            },
            null=True,
        ),  # fmt: skip
        "sizes": mapping(
            either(number(0, 2.0**60, null=True), text(), expected="a size or a note"), null=True
        ),  # fmt: skip
        "data": mapping(anything, null=True),
        "lineage": record(
            {
                "recipe": mapping(anything, null=True),
                "seed": number(integer=True, null=True),
                "recipe_path": text(null=True),
            },
            null=True,
        ),  # fmt: skip
        "sha256": mapping(HEX64),
    },
    ("input",),
)

ARTIFACT = record(
    {
        "file": NAME,
        "format": text(max_len=64),
        "precision": text(max_len=64),
        "bytes": BYTES,
        "sha256": HEX64,
        "input": TENSOR,
        "output": TENSOR,
        "parity": PARITY,
        "tflm_parity": PARITY,
        "accuracy": number(0.0, 1.0, null=True),
        "runtime": text(null=True),
        "runtime_family": text(max_len=64, null=True),
        "runs_on": items(text(max_len=64), max_len=64),
        "not_on": mapping(text()),
        "tflm_arena_bytes": count(2.0**40, null=True),
        "excluded_layers": items(anything, null=True),
        "layer_errors": items(anything, null=True),
        "not_checked": items(text(), null=True),
        "notes": items(text(), null=True),
        "error": text(null=True),
        "skipped": flag(null=True),
        "passed": flag(null=True),
    },
    ("file", "format", "precision"),
)
EXPORTS = record(
    {
        "schema": text(max_len=64),
        "run": NAME,
        "card_sha256": HEX64,
        "passed": flag(null=True),
        "settings": mapping(anything, null=True),
        "artifacts": items(ARTIFACT, max_len=10_000),
    },
    ("artifacts",),
)

BUDGET = record({k: number(0.0, BIG) for k in ("latency_ms", "ram_kb", "flash_kb")})
FIGURES = {
    "latency_ms": number(0.0, BIG, null=True),
    "ram_bytes": count(2.0**60, null=True),
    "flash_bytes": count(2.0**60, null=True),
}
PROFILE_RECORD = record(
    {
        "artifact": NAME,
        "device": NAME,
        "format": text(max_len=64, null=True),
        "precision": text(max_len=64, null=True),
        "device_class": text(max_len=64, null=True),
        "method": text(max_len=64, null=True),
        **FIGURES,
        "latency": mapping(anything, null=True),
        "budget": BUDGET,
        "verdict": text(max_len=200),
        "reasons": items(text()),
    },
    ("artifact", "device", "verdict", "budget", "reasons"),
)
PROFILE = record(
    {
        "schema": text(max_len=64),
        "run": NAME,
        "card_sha256": HEX64,
        "exports_sha256": HEX64,
        "settings": mapping(anything, null=True),
        "devices": items(
            record(
                {"name": NAME, "class": text(max_len=64, null=True), "budget": BUDGET}, ("name",)
            )
        ),  # fmt: skip
        "artifacts": mapping(mapping(anything)),
        "estimator": mapping(anything, null=True),
        "records": items(PROFILE_RECORD),
        "not_checked": items(text(), null=True),
    },
    ("records",),
)
MANIFEST = record(
    {
        "schema": text(max_len=64),
        "run": NAME,
        "input": TENSOR,
        "output": mapping(anything, null=True),
        "labels": items(anything, null=True),
        "files": items(
            record(
                {
                    "file": NAME,
                    "format": text(max_len=64),
                    "precision": text(max_len=64),
                    "bytes": BYTES,
                    "sha256": HEX64,
                    "checked_sha256": HEX64,
                    "input": TENSOR,
                    "output": TENSOR,
                    "accuracy": number(0.0, 1.0, null=True),
                    "parity": PARITY,
                    "devices": mapping(
                        record({"verdict": text(max_len=200), "method": text(null=True), **FIGURES})
                    ),
                    "c_files": record(
                        {"dir": NAME, "files": mapping(HEX64)}, ("dir", "files"), null=True
                    ),
                },  # fmt: skip
                ("file", "sha256"),
            ),
            max_len=10_000,
        ),
        "upstream": record({"card_sha256": HEX64, "exports_sha256": HEX64}),
    },
    ("files",),
)

#: record file (as the run directory names it) -> (schema, the command that rewrites it)
SCHEMAS: dict[str, tuple[Check, str]] = {
    "student/card.json": (CARD, "distill"),
    "export/exports.json": (EXPORTS, "export"),
    "profile/profile.json": (PROFILE, "profile"),
    "ship/manifest.json": (MANIFEST, "profile"),
}


def schema_for(path: str | Path) -> tuple[str, Check, str] | None:
    """(record name, schema, command) for a path ending in a record's place, else None."""
    p = Path(path)
    rel = f"{p.parent.name}/{p.name}"
    if rel in SCHEMAS:
        return (rel, *SCHEMAS[rel])
    return None


def check(doc: Any, path: str | Path, what: str) -> Any:
    """``doc`` when it matches the schema of the record at ``path`` (unknown records pass);
    else a UserError naming the file, the field, what is allowed and the command to re-run."""
    known = schema_for(path)
    if known is None:
        return doc
    rel, schema, command = known
    try:
        schema(doc, "")
    except Mismatch as bad:
        run = Path(path).parent.parent
        raise UserError(
            f"{what} '{path}': {bad.describe()}. The file was edited or damaged; rewrite it "
            f"with: tinyship {command} --run {run} --force"
        ) from None
    return doc
