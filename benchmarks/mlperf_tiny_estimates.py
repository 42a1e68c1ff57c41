"""MLPerf Tiny reference models on microcontrollers: per-stack estimates vs published latencies.

Run: ``python -m benchmarks.mlperf_tiny_estimates`` (part of ``make bench``; writes
benchmarks/results/mlperf_tiny_estimates.md and prints the same tables).

Each named MCU stack (devices/catalog.yaml ``stacks:``) is fitted on its published MLPerf Tiny
runs (devices/stacks.py). For every model x board x stack with a published run this prints the
in-sample estimate, the published latency (1000 / median inferences per second), their ratio,
and the held-out checks: leave-one-model-out (LOMO: the model's runs on this stack left out of the
joint fit; other stacks' runs of it stay), LOMO on every stack (the model left out of every stack's
runs, as for a model nobody has published) and leave-one-board-out (LOBO: the stack's runs on that
board left out). No host measurement is involved. The work
per operator kind of kws/ad comes from analysing the .tflite files in ../shared/data/mlperf_tiny
(checked here against the catalog's figures); ic/vww from the reference architectures.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "mlperf_tiny"
FILES = {"kws": "kws_ref_model.tflite", "ad": "ad01_int8.tflite"}


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def checked_files(cat) -> list[str] | None:
    """The .tflite files found here whose analysed work matches the catalog's reference figures;
    None (after saying which) when one disagrees."""
    from devices import analyse, stacks

    checked = []
    for model, f in FILES.items():
        if (DATA / f).is_file():
            w = stacks.work_of(analyse(DATA / f))
            ref = stacks.reference_work(cat, model)
            if w.by_kind != ref.by_kind or w.n_ops != ref.n_ops or w.outputs != ref.outputs:
                print(
                    f"catalog reference_models.{model} disagrees with the analysis of {f}",
                    file=sys.stderr,
                )
                return None
            checked.append(f)
    return checked


def estimate_rows(cat, ev: dict) -> list[str]:
    """One table row per published run: the estimate, its ratio and the held-out ratios."""
    from devices import stacks

    lines = []
    for name, e in ev.items():
        f = stacks.fit(cat, name)
        lomo = {(r["model"], r["board"]): r for r in e["lomo"]}
        lobo = {(r["model"], r["board"]): r for r in e["lobo"]}
        every = {(r["model"], r["board"]): r for r in e["lomo_everywhere"]}
        for run in cat.stacks[name].runs:
            key = (run["model"], run["board"])
            pub = 1e3 / run["inferences_per_s"]
            est = f.predict_s(stacks.reference_work(cat, run["model"]), cat.get(run["board"])) * 1e3
            lines.append(
                f"| {name} | {run['model']} | {run['board']} | {pub:.2f} | {est:.2f} | {est / pub:.2f} | "
                f"{_r(lomo[key]['ratio'])} | {_r(every[key]['ratio'])} | {_r(lobo[key]['ratio'])} |"
            )
    return lines


def summary_rows(ev: dict) -> list[str]:
    """One row per stack and board: median and worst absolute error of the held-out estimates."""
    lines = []
    for name, e in ev.items():
        for board in sorted({r["board"] for r in e["lomo"]}):
            lo, lb = e["lomo_summary"][board], e["lobo_summary"].get(board, {})
            ev_ = e["lomo_everywhere_summary"][board]
            ours = [
                abs(r["ratio"] - 1) * 100
                for r in e["lomo"]
                if r["board"] == board and r["model"] in FILES and r["ratio"]
            ]
            lines.append(
                f"| {name} | {board} | {_r(lo['median_abs_err_pct'])} | {_r(lo['max_abs_err_pct'])} | "
                f"{_r(max(ours) if ours else None)} | {_r(ev_['median_abs_err_pct'])} | "
                f"{_r(ev_['max_abs_err_pct'])} | {_r(lb.get('median_abs_err_pct'))} | "
                f"{_r(lb.get('max_abs_err_pct'))} |"
            )
    return lines


def closing_lines(ev: dict) -> list[str]:
    """The fitted costs, the median LOMO error over everything, and where the figures come from."""
    from devices import stacks

    fits = "; ".join(f"{n} {e['fit']['mac_cycles']:.2f}" for n, e in ev.items() if e["fit"])
    shared = next(e["fit"] for e in ev.values() if e["fit"])
    shared = ", ".join(f"{k} {shared[k]:.2f}" for k in stacks.SHARED)
    all_lomo = [abs(r["ratio"] - 1) for e in ev.values() for r in e["lomo"] if r["ratio"]]
    return [
        "",
        "Fitted costs on all runs, in cycles at a peak of one int8 MAC per cycle (divide by the board's "
        f"MACs/cycle; op_cycles is per operator, undivided): mac_cycles per stack: {fits}; shared by "
        f"every stack: {shared}.",
        f"Median LOMO absolute error over all stacks and boards: {statistics.median(all_lomo) * 100:.1f}%.",
        "LOBO is n/a where a stack ran on one board only (tflm-cmsis-nn: NUCLEO-L4R5ZI).",
        "Sources: every published row cites its results.txt in devices/catalog.yaml (`stacks:`).",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common
    from devices import load_catalog, stacks

    ap = common.parser("mlperf_tiny_estimates", __doc__)
    args = common.parse(ap, argv)
    cat = load_catalog()
    checked = checked_files(cat)
    if checked is None:
        return 3
    ev = stacks.evaluate(cat)
    lines = [
        "# MLPerf Tiny reference models: per-stack MCU estimates vs published latencies",
        "",
        "- command: `python -m benchmarks.mlperf_tiny_estimates`",
        f"- model: `{stacks.MODEL_NAME}`",
        f"- reference work checked against the files: {', '.join(checked) or 'none (files not found)'}",
        "",
        "| stack | model | board | published ms | estimate ms (fit on all) | ratio | LOMO ratio | "
        "LOMO every stack | LOBO ratio |",
        "|---|---|---|---|---|---|---|---|---|",
        *estimate_rows(cat, ev),
        "",
        "Summary: absolute error of the held-out estimates, per stack and board (median / worst, percent).",
        "",
        "| stack | board | LOMO median | LOMO worst | LOMO on kws+ad worst | LOMO every stack median | "
        "LOMO every stack worst | LOBO median | LOBO worst |",
        "|---|---|---|---|---|---|---|---|---|",
        *summary_rows(ev),
        *closing_lines(ev),
    ]
    text = "\n".join(lines)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "mlperf_tiny_estimates.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
