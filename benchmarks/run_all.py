"""Run the benchmarks one after another (``make bench``) and refresh benchmarks/RESULTS.md.

The four of issue 5, the MLPerf Tiny estimator check, then issue 2's ensemble-vs-member count.

distill_speed needs the bench venv (torchdistill beside its own torch); it is built by
``benchmarks/setup_bench_env.sh`` here, only when distill_speed is among those run.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import time

from benchmarks import common

NAMES = (
    "hinton_mnist",
    "bucilua_munge",
    "distill_speed",
    "direct_vs_distilled",
    "mlperf_tiny_estimates",
    "ensemble_vs_member",
    "demo_student",
    "kws_speakers",  # needs build/kws/search.json (make kws) for the M4F choice, else the recipe's student
)

# Benchmarks with their own flags, run on their own (`python -m benchmarks.<name>`); RESULTS.md
# shows their latest result file after those above.
OWN_RUN = (
    "loop_overhead",
    "estimator_validation",
    "frontend_cycles",
    "kws_candidates",
    "kws_stream",
    "kws_stream_teacher",
)

# A section whose protocol changed after its result file was written says so above its figures,
# until the benchmark is run again (then delete its line here).
PENDING: dict[str, str] = {}


def write_summary(names: list[str], timings: dict[str, float]) -> None:
    """benchmarks/RESULTS.md = the latest full-default result file of each benchmark, each with its
    own command, commit, machine and date; then RESULTS.notes.md. Written from the files alone, so
    a benchmark run on its own shows up at the next refresh (``--summary``)."""
    from ground import rundir

    parts = [
        "# Benchmark results (latest full runs)\n",
        "Written by `python -m benchmarks.run_all` (or `--summary`, which runs nothing) from "
        "`benchmarks/results/<name>.md`: each section is one benchmark's latest full-default run "
        "and names its exact command, commit, machine, date and settings beside its figures; "
        "sections come from different runs. Quick runs (`--quick`) go to "
        "`benchmarks/results/quick/` and are not shown here.\n",
    ]
    if timings:
        parts.append(
            f"This refresh followed `python -m benchmarks.run_all --only {' '.join(names)}` on "
            f"{common.machine()['cpu']}, {common.machine()['cores']} cores: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            + f"; total {sum(timings.values()):.0f} s ({sum(timings.values()) / 60:.1f} min).\n"
        )
    for name in NAMES + OWN_RUN:
        parts.append(_section(name))
    extra = common.ROOT / "benchmarks" / "RESULTS.notes.md"
    if extra.is_file():
        parts.append(extra.read_text())
    rundir.atomic_write_bytes(common.ROOT / "benchmarks" / "RESULTS.md", "\n".join(parts).encode())


def _section(name: str) -> str:
    """One benchmark's result file, its headings one level down, or a line saying how to run it."""
    md = common.RESULTS / f"{name}.md"
    if md.is_file():
        text = re.sub(r"(?m)^(#+) ", r"#\1 ", md.read_text())
        if name in PENDING:
            head, _, rest = text.partition("\n")
            text = f"{head}\n\n> {PENDING[name]}\n{rest}"
        return text
    old = common.RESULTS / "old-9866a02" / f"{name}.md"
    return (
        f"## {name}\n\nnot yet run on the current code: `python -m benchmarks.{name}`"
        + (" (or `make bench`)" if name in NAMES else "")
        + (
            f"; superseded figures of the old code: `{old.relative_to(common.ROOT)}`"
            if old.is_file()
            else ""
        )
        + "\n"
    )


def run_parallel(names: list[str], flags: list[str], jobs: int) -> dict[str, tuple[int, float]]:
    """Each benchmark as ``python -m benchmarks.<name>`` in its own process, ``jobs`` at a time,
    in the order given (the longest first in NAMES); returns exit code and seconds per name."""
    from concurrent.futures import ThreadPoolExecutor

    logs = common.ROOT / "build" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(name: str) -> tuple[int, float]:
        t = time.perf_counter()
        print(f"=== {name}: started, log {logs / (name + '.log')} ===", file=sys.stderr)
        with open(logs / f"{name}.log", "w") as log:
            rc = subprocess.call(
                [sys.executable, "-m", f"benchmarks.{name}", *flags],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=common.ROOT,
            )
        secs = time.perf_counter() - t
        print(f"=== {name}: exit {rc}, {secs:.0f} s ===", file=sys.stderr)
        return rc, secs

    with ThreadPoolExecutor(jobs) as pool:
        return dict(zip(names, pool.map(one, names)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    ap.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    ap.add_argument(
        "--quick", action="store_true", help="each benchmark with --quick (under a minute each)"
    )
    ap.add_argument("--epochs-scale", type=float, default=1.0)
    ap.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: rewrite benchmarks/RESULTS.md from the result files as they are",
    )
    ap.add_argument(
        "--no-bench-env", action="store_true", help="do not build .venv-bench for distill_speed"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="benchmarks run at once, each in its own process with 1 torch thread (default 1: one "
        "after another in this process); logs go to build/bench-logs/<name>.log",
    )
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1; got {args.jobs}")
    if args.summary:
        write_summary([], {})
        print(f"wrote {common.ROOT / 'benchmarks' / 'RESULTS.md'}", file=sys.stderr)
        return 0
    flags = (["--quick"] if args.quick else []) + ["--epochs-scale", str(args.epochs_scale)]
    t0 = time.perf_counter()
    failed, timings = [], {}
    for name in args.only:
        if (
            name == "distill_speed"
            and not args.no_bench_env
            and not (common.ROOT / ".venv-bench" / ".installed").exists()
        ):
            print(
                "building .venv-bench for distill_speed (torch 2.14.1 + torchvision + torchdistill) ...",
                file=sys.stderr,
            )
            if (
                subprocess.call(["bash", str(common.ROOT / "benchmarks" / "setup_bench_env.sh")])
                != 0
            ):
                print(
                    "could not build .venv-bench; distill_speed runs without torchdistill",
                    file=sys.stderr,
                )
        if args.jobs > 1:
            continue
        t = time.perf_counter()
        print(f"\n=== {name} ===", file=sys.stderr)
        rc = importlib.import_module(f"benchmarks.{name}").main(flags)
        timings[name] = time.perf_counter() - t
        print(f"=== {name}: exit {rc}, {timings[name]:.0f} s ===", file=sys.stderr)
        if rc:
            failed.append(name)
    if args.jobs > 1:
        for name, (rc, secs) in run_parallel(list(args.only), flags, args.jobs).items():
            timings[name] = secs
            if rc:
                failed.append(name)
    if not args.quick:
        write_summary(list(args.only), timings)
    print(
        f"all benchmarks: {time.perf_counter() - t0:.0f} s"
        + (f"; failed: {failed}" if failed else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
