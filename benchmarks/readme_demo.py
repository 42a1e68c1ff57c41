"""README.md's demo table, regenerated from one named run: ``python -m benchmarks.readme_demo
--run build/demo --write`` rewrites the block between the markers in README.md with the run's
figures, its date and the commit it ran at; ``--check`` compares the block with the run and
exits 1 when a figure differs by more than its run-to-run noise (NOISE, one rule per figure).

The noise rules, and why: holdout accuracies move by a row or two between CPUs (oneDNN picks
other kernels, float sums differ over 30 epochs), so +-2 rows; NLLs +-0.01; file and arena bytes
+-2% (converter versions and the weights' values change them a little); host latencies are
measured on a shared machine, and the PXA270 and the estimator's error come from the host fit,
so a factor of 4; MCU latencies are estimates from MACs and a stack's fixed costs, +-2%;
the file recommended on an MCU or the PDA must be the same file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ground import recommend, rundir

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BEGIN, END = "<!-- readme_demo:begin -->", "<!-- readme_demo:end -->"
MCU_FILE = "model.int8-full.tflite"


@dataclass(frozen=True)
class Noise:
    kind: str  # rows | abs | rel | factor | same
    amount: float = 0.0

    def close(self, readme: str, fresh: str, n_rows: int) -> bool:
        if self.kind == "same":
            return readme == fresh
        a, b = _number(readme), _number(fresh)
        if a is None or b is None:
            return readme == fresh
        if self.kind == "rows":  # accuracies, in percent of n_rows
            return abs(a - b) * n_rows / 100 <= self.amount + 1e-6
        if self.kind == "abs":
            return abs(a - b) <= self.amount + 1e-12
        if self.kind == "rel":
            return abs(a - b) <= self.amount * max(abs(a), abs(b))
        return max(a, b) <= self.amount * min(a, b) if min(a, b) > 0 else a == b

    def words(self) -> str:
        return {
            "rows": f"+-{self.amount:g} holdout rows",
            "abs": f"+-{self.amount:g}",
            "rel": f"+-{100 * self.amount:g}%",
            "factor": f"within a factor {self.amount:g}",
            "same": "the same",
        }[self.kind]


ROWS, NLL, BYTES = Noise("rows", 2), Noise("abs", 0.01), Noise("rel", 0.02)
HOST, EST, SAME = Noise("factor", 4), Noise("rel", 0.02), Noise("same")


def _number(text: str) -> float | None:
    m = re.search(r"-?[\d,]*\.?\d+(?:e-?\d+)?", text.replace(",", ""))
    return float(m.group()) if m else None


def _pct(x: float | None, n: int | None = None) -> str:
    """'99.16% (356/359)': the holdout rows behind a percentage."""
    if x is None:
        return "-"
    return f"{100 * x:.2f}%" + (f" ({round(x * n)}/{n})" if n else "")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g} ms"


def figures(run: Path) -> list[tuple[str, str, Noise]]:
    """(figure, value, noise) rows of the demo table, from the run's records."""
    card = rundir.read_json(run / rundir.CARD, "student card")
    exports = rundir.read_json(run / rundir.EXPORTS, "exports record")
    prof = rundir.read_json(run / rundir.PROFILE, "profile")
    h = card["metrics"]["holdout"]
    arts = {a["file"]: a for a in exports["artifacts"]}
    rec = {(r["device"], r["artifact"]): r for r in prof["records"]}
    rows = [
        ("holdout rows", str(h["n"]), SAME),
        ("teacher accuracy", _pct(h["teacher"]["accuracy"], h["n"]), ROWS),
        ("teacher NLL", f"{h['teacher'].get('nll', float('nan')):.3f}", NLL),
        ("student accuracy", _pct(h["student"]["accuracy"], h["n"]), ROWS),
        ("student NLL", f"{h['student'].get('nll', float('nan')):.3f}", NLL),
        ("hard-label baseline accuracy", _pct(h["baseline"]["accuracy"], h["n"]), ROWS),
        ("student.pt2 bytes", f"{card['student']['bytes']:,}", BYTES),
    ]
    for f in ("model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite", MCU_FILE):
        if f in arts and arts[f].get("bytes"):
            rows.append((f"{f} bytes", f"{arts[f]['bytes']:,}", BYTES))
    if arts.get(MCU_FILE, {}).get("tflm_arena_bytes"):
        rows.append(
            (f"{MCU_FILE} TFLite Micro arena", f"{arts[MCU_FILE]['tflm_arena_bytes']:,} B", BYTES)
        )
    for f in ("model.fp32.tflite", MCU_FILE):
        if ("host", f) in rec:
            rows.append((f"host p50, 1 thread, {f}", _ms(rec[("host", f)]["latency_ms"]), HOST))
    for dev in ("cortex-m4f-stm32l4r5", "cortex-m7-stm32h7a3", "cortex-m55-alif-e7",
                "hearing-apollo3-blue", "pda-pxa270"):  # fmt: skip
        if (dev, MCU_FILE) in rec:
            noise = HOST if dev.startswith("pda") else EST
            rows.append(
                (
                    f"{dev} latency, {MCU_FILE} (estimated)",
                    _ms(rec[(dev, MCU_FILE)]["latency_ms"]),
                    noise,
                )
            )
    ape = ((prof.get("estimator") or {}).get("loo") or {}).get("median_ape")
    if ape is not None:
        rows.append(("host estimator leave-one-out error (median)", f"{ape:.1f}%", HOST))
    picks = recommend.recommend(prof, exports, recommend.tolerance(card))
    for dev, p in picks.items():
        if p.device_class in ("mcu", "pda"):
            rows.append((f"recommended on {dev}", p.recommended or "nothing fits", SAME))
    return rows


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return sha + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def render(run: Path, commit: str | None = None) -> str:
    """The README block for ``run``: a header naming the run, then the table."""
    card = rundir.read_json(run / rundir.CARD, "student card")
    created = (card.get("lineage") or {}).get("created") or _dt.datetime.now(_dt.UTC).isoformat()
    lines = [
        BEGIN,
        f"Figures of `tinyship run --recipe recipes/demo.yaml --run {run}` (what `make demo` runs; "
        f"run {created[:10]}, commit {commit or _commit()}), written by `python -m "
        f"benchmarks.readme_demo --run {run} --write`; `--check` compares another run with them "
        "within the run-to-run noise named per figure.",
        "",
        "| figure | value | run-to-run noise |",
        "|---|---|---|",
        *(f"| {k} | {v} | {n.words()} |" for k, v, n in figures(run)),
        END,
    ]
    return "\n".join(lines)


def parse_block(text: str) -> dict[str, str]:
    """figure -> value from the block in ``text`` (README.md)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    block = text[text.index(BEGIN) : text.index(END)]
    out = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("figure", "---"):
            out[cells[0]] = cells[1]
    return out


def differences(readme: str, run: Path) -> list[str]:
    """Each figure where the README and ``run`` differ by more than its noise."""
    have = parse_block(readme)
    card = rundir.read_json(run / rundir.CARD, "student card")
    n = int(card["metrics"]["holdout"]["n"])
    out = []
    for key, value, noise in figures(run):
        if key not in have:
            out.append(f"{key}: not in README.md (run: {value})")
        elif not noise.close(have[key], value, n):
            out.append(f"{key}: README.md {have[key]}, run {value} (noise: {noise.words()})")
    return out


def write(run: Path, readme: Path = README) -> None:
    text = readme.read_text()
    block = render(run)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        raise SystemExit(f"add the markers {BEGIN} and {END} to {readme} where the table goes")
    rundir.atomic_write_bytes(readme, text.encode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.readme_demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--run", type=Path, default=Path("build/demo"), help="the run to read")
    ap.add_argument("--write", action="store_true", help="rewrite README.md's demo block")
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md and the run differ")
    args = ap.parse_args(argv)
    if args.write:
        write(args.run)
        print(f"README.md: demo block rewritten from {args.run}")
        return 0
    if args.check:
        diff = differences(README.read_text(), args.run)
        print("\n".join(diff) or f"README.md matches {args.run} within the noise of each figure")
        return 1 if diff else 0
    print(render(args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
