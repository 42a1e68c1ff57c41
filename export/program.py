"""Step 1 of the stage: read ``student/`` and check it is whole before exporting anything.

Every check here turns a corrupt or stale run into a UserError naming the file and
the fix, before a single artifact is written (docs/run-directory.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ground import pt2, rundir
from ground.errors import UserError
from ground.probs import softmax

PROB_TOLERANCE = 1e-5
_RERUN = "Re-run the distill stage with --force to rebuild student/."


@dataclass
class StudentRun:
    """The checked contents of ``student/``: the program, its card and the two npz sets."""

    run_dir: Path
    card: dict[str, Any]
    card_sha256: str
    program: Any  # torch.export.ExportedProgram
    calibration: np.ndarray
    holdout_x: np.ndarray
    holdout_y: np.ndarray
    student_probs: np.ndarray

    @property
    def input_shape(self) -> list[int]:
        """Shape of one example, without the batch dimension."""
        return list(self.card["input"]["shape"])

    @property
    def num_classes(self) -> int:
        return int(self.card["output"]["num_classes"])


def _check_card(card: dict[str, Any], path: Path) -> None:
    for key in ("run", "input", "output", "labels", "sha256"):
        if key not in card:
            raise UserError(
                f"card '{path}' lacks the key '{key}' required by docs/run-directory.md. {_RERUN}"
            )
    inp = card["input"]
    if (
        not isinstance(inp, dict)
        or not isinstance(inp.get("shape"), list)
        or not all(isinstance(s, int) and s > 0 for s in inp["shape"])
    ):
        raise UserError(
            f"card '{path}' has input.shape {inp.get('shape') if isinstance(inp, dict) else inp!r}; "
            f"expected a list of positive ints such as [1, 8, 8]. {_RERUN}"
        )
    if not isinstance(card["output"], dict) or not isinstance(
        card["output"].get("num_classes"), int
    ):
        raise UserError(
            f"card '{path}' has output {card['output']!r}; expected output.num_classes as an int. {_RERUN}"
        )


def _check_hashes(card: dict[str, Any], student_dir: Path) -> None:
    if not isinstance(card["sha256"], dict):
        raise UserError(
            f"card '{student_dir / 'card.json'}' has sha256 {card['sha256']!r}; expected a mapping of "
            f"file name to sha256 hex digest. {_RERUN}"
        )
    for name, want in card["sha256"].items():
        f = rundir.inside(
            student_dir.parent, student_dir.name, name, "a file name in card.json's sha256"
        )
        if not f.exists():
            raise UserError(f"'{f}' is listed in card.json but missing. {_RERUN}")
        got = rundir.sha256_file(f)
        if got != want:
            raise UserError(
                f"'{f}' has sha256 {got[:12]}… but card.json records {str(want)[:12]}…: the file changed "
                f"after the card was written (corrupt or stale run). {_RERUN}"
            )


def _check_array(
    a: np.ndarray, name: str, path: Path, shape: list[int | None], dtype: type
) -> None:
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise UserError(
            f"'{path}' array '{name}' has shape {list(a.shape)}; expected {shape} (None = any). {_RERUN}"
        )
    if not np.issubdtype(a.dtype, dtype):
        raise UserError(
            f"'{path}' array '{name}' has dtype {a.dtype}; expected {dtype.__name__}. {_RERUN}"
        )


def load_program(path: Path, trust_pickles: bool = False):
    """Load ``student.pt2`` through :func:`ground.pt2.load`: refused if torch would unpickle any of it."""
    if not path.is_file():
        raise UserError(
            f"student program not found at '{path}'. Run the distill stage first (make distill)."
        )
    try:
        return pt2.load(path, trust_pickles=trust_pickles)
    except pt2.UnsafeArchiveError:
        raise
    except Exception as exc:  # truncated zip, wrong format, version mismatch
        raise UserError(
            f"student program '{path}' cannot be loaded with torch.export.load ({type(exc).__name__}: "
            f"{str(exc)[:200]}). {_RERUN}"
        ) from exc


def student_logits(program: Any, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """Logits of the torch student, the reference every artifact is compared with."""
    import torch

    module = program.module()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(module(torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))).numpy())
    return np.concatenate(out).astype(np.float32)


def load_student(run_dir: str | Path, trust_pickles: bool = False) -> StudentRun:
    """Read and check ``run_dir/student``; the student's probabilities are recomputed and compared."""
    run_dir = Path(run_dir)
    student_dir = run_dir / "student"
    if not student_dir.is_dir():
        raise UserError(
            f"'{student_dir}' not found. Pass --run with a run directory that has a student/ folder "
            f"(made by tinyship distill --recipe RECIPE.yaml --run DIR), e.g. build/demo."
        )
    card_path = run_dir / rundir.CARD
    card = rundir.read_json(card_path, "student card")
    if not isinstance(card, dict):
        raise UserError(
            f"card '{card_path}' must be a JSON object; got {type(card).__name__}. {_RERUN}"
        )
    _check_card(card, card_path)
    _check_hashes(card, student_dir)
    cal = rundir.read_npz(run_dir / rundir.CALIBRATION, "calibration set", ("x",))
    ho = rundir.read_npz(run_dir / rundir.HOLDOUT, "holdout set", ("x", "y", "student_probs"))
    shape = list(card["input"]["shape"])
    k = int(card["output"]["num_classes"])
    _check_array(cal["x"], "x", run_dir / rundir.CALIBRATION, [None, *shape], np.floating)
    _check_array(ho["x"], "x", run_dir / rundir.HOLDOUT, [None, *shape], np.floating)
    n = len(ho["x"])
    _check_array(ho["y"], "y", run_dir / rundir.HOLDOUT, [n], np.integer)
    _check_array(
        ho["student_probs"], "student_probs", run_dir / rundir.HOLDOUT, [n, k], np.floating
    )
    if len(cal["x"]) == 0 or n == 0:
        raise UserError(
            f"calibration ({len(cal['x'])}) and holdout ({n}) sets must not be empty. {_RERUN}"
        )
    program = load_program(run_dir / rundir.STUDENT, trust_pickles)
    try:
        probs = softmax(student_logits(program, ho["x"]))
    except Exception as exc:
        raise UserError(
            f"student program '{run_dir / rundir.STUDENT}' fails on holdout x of shape "
            f"{list(ho['x'].shape)} ({type(exc).__name__}: {str(exc)[:200]}). {_RERUN}"
        ) from exc
    err = float(np.abs(probs - ho["student_probs"]).max())
    if not err <= PROB_TOLERANCE:
        raise UserError(
            f"student.pt2 gives probabilities that differ from holdout.npz student_probs by {err:.2e} "
            f"(allowed {PROB_TOLERANCE:g}): the run is stale or corrupt. {_RERUN}"
        )
    return StudentRun(
        run_dir=run_dir,
        card=card,
        card_sha256=rundir.sha256_file(card_path),
        program=program,
        calibration=cal["x"].astype(np.float32),
        holdout_x=ho["x"].astype(np.float32),
        holdout_y=ho["y"].astype(np.int64),
        student_probs=ho["student_probs"].astype(np.float32),
    )
