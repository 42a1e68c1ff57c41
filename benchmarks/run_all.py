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


def write_summary(names: list[str], timings: dict[str, float]) -> None:
    """benchmarks/RESULTS.md = the latest full-default results of each benchmark, with command and machine."""
    from ground import rundir

    parts = [
        "# Benchmark results (latest full runs)\n",
        "Written by `python -m benchmarks.run_all` from `benchmarks/results/<name>.md`; each section "
        "names the exact command, the machine (CPU model, cores) and the settings beside its figures. "
        "Quick runs (`--quick`) go to `benchmarks/results/quick/` and are not shown here.\n",
        f"Last `python -m benchmarks.run_all` ({', '.join(names)}) on {common.machine()['cpu']}, "
        f"{common.machine()['cores']} cores: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {sum(timings.values()):.0f} s ({sum(timings.values()) / 60:.1f} min).\n",
    ]
    for name in NAMES:
        md = common.RESULTS / f"{name}.md"
        if md.is_file():
            parts.append(re.sub(r"(?m)^(#+) ", r"#\1 ", md.read_text()))
        else:
            old = common.RESULTS / "old-9866a02" / f"{name}.md"
            parts.append(
                f"## {name}\n\nnot yet run on the current code: `python -m benchmarks.{name}` "
                "(or `make bench`)"
                + (
                    f"; superseded figures of the old code: `{old.relative_to(common.ROOT)}`"
                    if old.is_file()
                    else ""
                )
                + "\n"
            )
    extra = common.ROOT / "benchmarks" / "RESULTS.notes.md"
    if extra.is_file():
        parts.append(extra.read_text())
    rundir.atomic_write_bytes(common.ROOT / "benchmarks" / "RESULTS.md", "\n".join(parts).encode())


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
