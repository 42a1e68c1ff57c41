"""``python -m distill --recipe R --out build/<run>``: a thin CLI over :func:`distill.run`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ground.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distill",
        description="Distil a teacher ensemble into a small student network and write <out>/student/ "
        "(student.pt2, card.json, calibration.npz, holdout.npz; see docs/run-directory.md). "
        "Also trains a same-architecture student on hard labels only, as the baseline.",
        epilog="example: python -m distill --recipe recipes/demo.yaml --out build/demo --force",
    )
    p.add_argument(
        "--recipe",
        required=True,
        help="YAML recipe with sections data, teacher, transfer, student, train",
    )
    p.add_argument(
        "--run",
        "--out",
        dest="out",
        required=True,
        help="run directory, e.g. build/demo; student/ is written inside it (--out: the old name)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing <out>/student (kept until the new one is complete)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue training from the last checkpoint in <out>/.work (same recipe and seed)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="override train.seed (teacher, transfer set and students)",
    )
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument(
        "--trust-pickles",
        action="store_true",
        help="allow teacher members stored as pickles (sklearn-pickle); only for files you made yourself",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    return p


def run_stage(args: argparse.Namespace, out: Path, command: str):
    """The stage from parsed flags (``python -m distill`` and ``tinyship distill`` share it), under
    torchrun when launched by it; returns the run's result and whether this is the main rank."""
    from .distributed import session
    from .pipeline import run

    with session() as dist_ctx:  # one process unless launched by torchrun
        res = run(
            args.recipe,
            out,
            force=args.force,
            resume=args.resume,
            seed=args.seed,
            epochs=args.epochs,
            trust_pickles=args.trust_pickles,
            command=command,
            progress=not args.quiet and sys.stderr.isatty(),  # no bars in a file or pipe
            dist_ctx=dist_ctx,
        )
        return res, dist_ctx.is_main


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m distill " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    res, is_main = run_stage(args, args.out, command)
    if is_main:
        print(summary(res.card, res.timings_s))
    return 0


def summary(card: dict, timings: dict[str, float]) -> str:
    """A few lines for the terminal: accuracies on the holdout, sizes, where the files are."""
    m = card["metrics"]["holdout"]
    s = card["sizes"]
    t = m["teacher"]
    picks = (
        [f"best member {t['best_member']['name']} {t['best_member']['accuracy']:.4f}"]
        if "best_member" in t
        else []
    )
    if "validation_pick" in t:
        picks.append(
            f"validation's pick {t['validation_pick']['name']} {t['validation_pick']['accuracy']:.4f}"
        )
    lines = [
        f"distill {card['run']}: holdout n={m['n']}",
        f"  teacher  accuracy {t['accuracy']:.4f}  ({len(card['teacher']['members'])} members"
        + "".join(f"; {p}" for p in picks)
        + ")",
        f"  student  accuracy {m['student']['accuracy']:.4f}  agreement with teacher "
        f"{m['student']['agreement_with_teacher']:.4f}",
    ]
    if "baseline" in m:
        lines.append(
            f"  baseline accuracy {m['baseline']['accuracy']:.4f}  (same {card['student']['arch']}, hard labels only)"
        )
    if s.get("teacher_bytes"):
        lines.append(
            f"  size     student {s['student_bytes']:,} B (student.pt2; {s['student_param_bytes']:,} B fp32 params) "
            f"vs teacher {s['teacher_bytes']:,} B -> {100 * s['ratio']:.3f}%"
        )
    lines.append(
        f"  student  {card['student']['params']:,} params, {card['student']['macs']:,} MACs"
    )
    chosen = (card.get("input", {}).get("decision") or {}).get("chosen")
    if chosen:  # data.decision.choose: validation (rule T36o)
        pick = chosen["pick"] or f"none met the bounds, the recipe's {chosen['recipe_rule']} kept"
        lines.append(
            f"  decision {pick} (smooth/threshold) picked on validation streams; recipe "
            f"{chosen['recipe_rule']}; input.decision.chosen says how"
        )
    parts = ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k != "total")
    lines.append(
        f"  time     {timings.get('total', 0):.1f} s ({parts})  -> {card['run']}/student/card.json"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_cli(main))
