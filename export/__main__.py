"""``python -m export --run build/<run>``: a thin CLI over :func:`export.run`."""

from __future__ import annotations

import argparse
import sys

from ground.cli import run_cli


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export",
        description=(
            "Export build/<run>/student to ONNX, TFLite and Core ML files in build/<run>/export, each checked "
            "against the torch student on holdout.npz (exports.json)."
        ),
    )
    p.add_argument(
        "--run", required=True, help="run directory with a student/ folder, e.g. build/demo"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing export/ (kept until the new one is complete)",
    )
    p.add_argument(
        "--formats",
        type=_names,
        default=None,
        help="comma list, e.g. onnx,tflite,coreml (default: recipe or all)",
    )
    p.add_argument(
        "--precisions",
        type=_names,
        default=None,
        help="comma list, e.g. fp32,int8,int8-full (default: recipe or every precision of each format)",
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="write exports.json even when an artifact fails its parity gate (recorded as passed: false)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="read the export section from this recipe instead of the card's",
    )
    p.add_argument(
        "--json", action="store_true", help="print exports.json to stdout instead of the table"
    )
    p.add_argument(
        "--trust-pickles",
        action="store_true",
        help="load a student.pt2 even if torch would unpickle parts of it (runs code from the file)",
    )
    return p


def table(report) -> str:
    """The end-of-run table: file, bytes, agreement, max err, accuracy, runtime."""
    rows = [("file", "bytes", "agree", "max err", "acc", "tflm arena", "status", "runtime")]
    for a in report.artifacts:
        p = a.parity
        status = {True: "ok", False: "FAIL", None: "unchecked"}[a.passed]
        if a.skipped:
            status = "skipped"
        rows.append(
            (
                a.file,
                str(a.bytes or "-"),
                f"{p.agreement:.4f}" if p else "-",
                f"{p.max_abs_prob_err:.4f}" if p else "-",
                f"{a.accuracy:.4f}" if a.accuracy is not None else "-",
                str(a.tflm_arena_bytes or "-"),
                status,
                a.runtime or (a.error or "; ".join(a.not_checked))[:70],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from . import run

    report = run(
        args.run,
        formats=args.formats,
        precisions=args.precisions,
        force=args.force,
        keep_going=args.keep_going,
        recipe=args.recipe,
        trust_pickles=args.trust_pickles,
    )
    if args.json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        print(table(report))
        print(
            f"wrote {report.export_dir}/exports.json ({'all gates passed' if report.passed else 'SOME GATES FAILED'})"
        )
    for a in report.artifacts:
        if a.error:
            print(f"warning: {a.file}: {a.error}", file=sys.stderr)
    return 0 if report.passed or report.settings.get("keep_going") else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
