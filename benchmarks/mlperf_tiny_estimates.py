"""Estimate the two MLPerf Tiny reference models on Cortex-M4/M7 and compare with published latencies.

Run: ``python -m benchmarks.mlperf_tiny_estimates`` (part of ``make bench``; writes
benchmarks/results/mlperf_tiny_estimates.md and prints the same table).

The estimator (devices/estimate.py) is calibrated on host LiteRT measurements of these
same two models, then transferred to the catalog's Cortex-M4F (STM32L4R5, NUCLEO-L4R5ZI)
and Cortex-M7 (STM32H7A3, NUCLEO-H7A3ZI-Q) entries through their MACs/cycle and clock
("host transfer"). The catalog also lists these published runs for the two boards, and
the estimator then takes its int8 efficiency from them ("board efficiency"); here each
model is predicted from the *other* model's runs only, so no figure predicts itself.
The published figures are MLPerf Tiny v1.1 closed-division results (throughput in
inferences/s; latency = 1000 / throughput) submitted by Krai for those exact boards.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "mlperf_tiny"
MCUS = (
    "cortex-m4f-stm32l4r5",
    "cortex-m7-stm32h7a3",
)  # catalog devices with published runs (catalog.yaml)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common
    from devices import analyse, estimate, load_catalog
    from devices.runners import get

    ap = common.parser("mlperf_tiny_estimates", __doc__)
    ap.add_argument(
        "--runs", type=int, default=200, help="timed host runs per model (default 200; --quick: 30)"
    )
    args = common.parse(ap, argv)
    runs = 30 if args.quick else args.runs
    if not DATA.is_dir():
        print(
            f"MLPerf Tiny models not found at {DATA}; see ../shared/data/README.md", file=sys.stderr
        )
        return 2
    cat = load_catalog()
    host = cat.get("host")
    published = {name: cat.get(name).published for name in MCUS}
    models = sorted({r["model"] for rs in published.values() for r in rs})
    an = {m: analyse(DATA / m) for m in models}
    meas = {m: get("host")(DATA / m, runs=runs, warmup=20, pin_core=0) for m in models}
    fit = estimate.fit([(an[m], "litert", meas[m].p50_ms / 1e3) for m in models], host)
    mach = common.machine()
    lines = [
        "# MLPerf Tiny reference models: tinyship estimates vs published latencies",
        "",
        "- command: `python -m benchmarks.mlperf_tiny_estimates"
        + (" --quick" if args.quick else "")
        + "`",
        f"- machine: {mach['cpu']}, {mach['cores']} cores, Python {mach['python']}",
        f"- settings: host LiteRT, {runs} timed runs after 20 warm-up, pinned to core 0",
        "",
        f"Estimator: `{estimate.MODEL_NAME}`, calibrated on host LiteRT p50 latencies of these two models "
        f"(host: {host.value('core')}, {host.value('clock_mhz')} MHz; fitted params: "
        + ", ".join(f"{k}={v:.3g}" for k, v in fit.params.items())
        + ").",
        "",
        "| model | MACs | host p50 ms (measured) | device | estimate ms: host transfer | estimate ms: board efficiency "
        "(other model) | published stack | published ms | ratio: host transfer | ratio: board efficiency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[str, list[float]] = {"host transfer": [], "board efficiency": []}
    for dev_name in MCUS:
        dev = cat.get(dev_name)
        for m in models:
            host_ms = fit.predict_s(an[m], dataclasses.replace(dev, published=[]), "litert") * 1e3
            board_ms = fit.predict_s(an[m], dev, "litert", exclude_model=m) * 1e3
            for r in (r for r in published[dev_name] if r["model"] == m):
                pub_ms = 1000.0 / r["inferences_per_s"]
                ratios["host transfer"].append(host_ms / pub_ms)
                ratios["board efficiency"].append(board_ms / pub_ms)
                lines.append(
                    f"| {m} | {an[m].macs:,} | {meas[m].p50_ms:.4f} | {dev_name} ({dev.value('clock_mhz')} MHz) | "
                    f"{host_ms:.2f} | {board_ms:.2f} | {r['stack']} | {pub_ms:.2f} | {host_ms / pub_ms:.2f} | "
                    f"{board_ms / pub_ms:.2f} |"
                )
    lines += [
        "",
        "Estimate / published over all rows: "
        + "; ".join(
            f"{k} {min(v):.2f}-{max(v):.2f} (median {statistics.median(v):.2f})"
            for k, v in ratios.items()
        )
        + ".",
    ]
    sources = sorted({r["source"] for rs in published.values() for r in rs})
    lines += [
        "",
        f"Published figures (devices/catalog.yaml, key 'published'): {'; '.join(sources)}. "
        "Latency = 1000 / (inferences per second); boards: "
        + "; ".join(f"{n}: {cat.get(n).title}" for n in MCUS)
        + ".",
        "",
        "Caveats: host transfer moves the host's efficiency (XNNPACK on x86) to Cortex-M cores through "
        "peak MACs/cycle x clock only; board efficiency needs published runs on the same board and is "
        "checked here on just two models (it carries the published stacks' speed: X-CUBE-AI or microTVM, not "
        "TFLite Micro); MCU memory wait states are not modelled. `python -m devices profile` uses board "
        "efficiency where the catalog has published runs (Cortex-M4F, M7) and host transfer elsewhere "
        "(Cortex-M55, PXA270, Pis, phones). The ratio columns are the estimator's error, reported as is.",
        "",
    ]
    text = "\n".join(lines)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "mlperf_tiny_estimates.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
