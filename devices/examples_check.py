"""Run every shipped example on the raw holdout, as a user would, before the file ships.

Each example runs in its own Python process (``python examples/<file>.py DATA``) on the raw
holdout: ``student/holdout_raw.csv`` where the data was text (a CSV, with its missing values
and unseen categories as the file has them), else holdout.npz's raw features as an ``.npy``.
Its printed labels are scored against the holdout labels; a file whose example's accuracy
differs from the accuracy export recorded for it is refused (not shipped, the reason in the
manifest). Both inputs are checked against the sha256s card.json records.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ground import rundir
from ground.errors import UserError

RAW_HOLDOUT = "holdout_raw.csv"
TIMEOUT_S = 600
WORKERS = 2


@dataclass
class ExampleCheck:
    """One example run on the raw holdout, against the accuracy export recorded for its file."""

    file: str
    example: str
    data: str  # what it was run on: holdout_raw.csv or holdout.npy
    rows: int
    accuracy: float | None
    recorded_accuracy: float | None
    passed: bool
    reason: str | None = None

    def record(self) -> dict:
        return asdict(self)


def _verified(run_dir: Path, name: str, card: dict) -> Path:
    path = run_dir / "student" / name
    want = (card.get("sha256") or {}).get(name)
    if want is not None and rundir.sha256_file(path) != want:
        raise UserError(
            f"'{path}' changed since the distill stage wrote it (sha256 differs from card.json); "
            "nothing was shipped. Re-run the distill stage with --force."
        )
    return path


def holdout_input(run_dir: Path, card: dict, tmp: Path) -> tuple[Path, np.ndarray]:
    """The raw holdout as a user's file, and its label indices."""
    ho = rundir.read_npz(_verified(run_dir, "holdout.npz", card), "holdout set", ("x", "y"))
    if RAW_HOLDOUT in (card.get("sha256") or {}):
        return _verified(run_dir, RAW_HOLDOUT, card), ho["y"].astype(np.int64)
    path = tmp / "holdout.npy"
    np.save(path, ho["x"].astype(np.float32))
    return path, ho["y"].astype(np.int64)


def _run_one(
    ship_dir: Path, file: str, example: str, data: Path, truth: list[str], art: dict, cwd: Path
) -> ExampleCheck:
    recorded = art.get("accuracy")
    base = dict(file=file, example=example, data=data.name, rows=len(truth))
    try:
        proc = subprocess.run(
            [sys.executable, str(ship_dir / example), str(data)],
            capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return ExampleCheck(
            **base, accuracy=None, recorded_accuracy=recorded, passed=False,
            reason=f"the example ran past {TIMEOUT_S} s",
        )  # fmt: skip
    printed = proc.stdout.splitlines()
    if proc.returncode != 0 or len(printed) != len(truth):
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        return ExampleCheck(
            **base, accuracy=None, recorded_accuracy=recorded, passed=False,
            reason=f"exit {proc.returncode}, {len(printed)} labels for {len(truth)} rows: {tail}",
        )  # fmt: skip
    acc = round(float(np.mean([a == b for a, b in zip(printed, truth)])), 6)
    ok = recorded is not None and acc == recorded
    return ExampleCheck(
        **base, accuracy=acc, recorded_accuracy=recorded, passed=ok,
        reason=None if ok else f"the example's holdout accuracy {acc} differs from the "
        f"recorded {recorded} (export/exports.json)",
    )  # fmt: skip


def check(
    ship_dir: Path, run_dir: Path, card: dict, arts: dict[str, dict], examples: dict[str, str]
) -> dict[str, ExampleCheck]:
    """Run each example (file -> its path under ``ship_dir``) on the raw holdout."""
    if not examples:
        return {}
    labels = [str(v) for v in card.get("labels") or []]
    with tempfile.TemporaryDirectory(prefix="tinyship-examples-") as tmp:
        data, y = holdout_input(run_dir, card, Path(tmp))
        truth = [labels[int(i)] for i in y]
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = {
                f: pool.submit(_run_one, ship_dir, f, ex, data, truth, arts[f], Path(tmp))
                for f, ex in examples.items()
            }
            return {f: fut.result() for f, fut in futures.items()}
