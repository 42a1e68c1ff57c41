"""Estimate the two MLPerf Tiny reference models on Cortex-M4/M7 and compare with published latencies.

Run: ``python -m benchmarks.mlperf_tiny_estimates`` (part of ``make bench``; writes
benchmarks/results/mlperf_tiny_estimates.md and prints the same table).

The estimator (devices/estimate.py) is calibrated on host LiteRT measurements of these
same two models, then transferred to the catalog's Cortex-M4F (STM32L4R5, NUCLEO-L4R5ZI)
and Cortex-M7 (STM32H7A3, NUCLEO-H7A3ZI-Q) entries through their MACs/cycle and clock.
The published figures are MLPerf Tiny v1.1 closed-division results (throughput in
inferences/s; latency = 1000 / throughput) submitted by Krai for those exact boards.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "mlperf_tiny"
SOURCE = ("mlcommons/tiny_results_v1.1, closed/Krai/results/README.md (commit 04558bf8), "
          "https://github.com/mlcommons/tiny_results_v1.1/blob/main/closed/Krai/results/README.md")
# (model file, device in catalog) -> [(board, software stack, published inferences/s)]
PUBLISHED = {
    ("kws_ref_model.tflite", "cortex-m4f-stm32l4r5"): [("NUCLEO_L4R5ZI", "X-CUBE-AI 7.3.0", 13.381),
                                                       ("NUCLEO_L4R5ZI", "X-CUBE-AI 8.0.0", 13.759),
                                                       ("NUCLEO_L4R5ZI", "microTVM + CMSIS-NN", 10.019)],
    ("ad01_int8.tflite", "cortex-m4f-stm32l4r5"): [("NUCLEO_L4R5ZI", "X-CUBE-AI 7.3.0", 131.949),
                                                   ("NUCLEO_L4R5ZI", "X-CUBE-AI 8.0.0", 131.950),
                                                   ("NUCLEO_L4R5ZI", "microTVM + CMSIS-NN", 116.212)],
    ("kws_ref_model.tflite", "cortex-m7-stm32h7a3"): [("NUCLEO_H7A3ZI", "X-CUBE-AI 7.3.0", 59.667),
                                                      ("NUCLEO_H7A3ZI", "X-CUBE-AI 8.0.0", 60.988)],
    ("ad01_int8.tflite", "cortex-m7-stm32h7a3"): [("NUCLEO_H7A3ZI", "X-CUBE-AI 7.3.0", 547.000),
                                                  ("NUCLEO_H7A3ZI", "X-CUBE-AI 8.0.0", 547.234)],
}


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common
    from devices import analyse, load_catalog
    from devices import estimate
    from devices.runners import get

    ap = common.parser("mlperf_tiny_estimates", __doc__)
    ap.add_argument("--runs", type=int, default=200, help="timed host runs per model (default 200; --quick: 30)")
    args = common.parse(ap, argv)
    runs = 30 if args.quick else args.runs
    if not DATA.is_dir():
        print(f"MLPerf Tiny models not found at {DATA}; see ../shared/data/README.md", file=sys.stderr)
        return 2
    cat = load_catalog()
    host = cat.get("host")
    models = sorted({m for m, _ in PUBLISHED})
    an = {m: analyse(DATA / m) for m in models}
    meas = {m: get("host")(DATA / m, runs=runs, warmup=20, pin_core=0) for m in models}
    fit = estimate.fit([(an[m], "litert", meas[m].p50_ms / 1e3) for m in models], host)
    mach = common.machine()
    lines = ["# MLPerf Tiny reference models: tinyship estimates vs published latencies", "",
             "- command: `python -m benchmarks.mlperf_tiny_estimates" + (" --quick" if args.quick else "") + "`",
             f"- machine: {mach['cpu']}, {mach['cores']} cores, Python {mach['python']}",
             f"- settings: host LiteRT, {runs} timed runs after 20 warm-up, pinned to core 0", "",
             f"Estimator: `{estimate.MODEL_NAME}`, calibrated on host LiteRT p50 latencies of these two models "
             f"(host: {host.value('core')}, {host.value('clock_mhz')} MHz; fitted params: "
             + ", ".join(f"{k}={v:.3g}" for k, v in fit.params.items()) + ").", "",
             "| model | MACs | host p50 ms (measured) | device | tinyship estimate ms | published board | stack | published ms | estimate / published |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (m, dev_name), pubs in PUBLISHED.items():
        dev = cat.get(dev_name)
        est_ms = fit.predict_s(an[m], dev, "litert") * 1e3
        for board, stack, ips in pubs:
            pub_ms = 1000.0 / ips
            lines.append(f"| {m} | {an[m].macs:,} | {meas[m].p50_ms:.4f} | {dev_name} ({dev.value('clock_mhz')} MHz) | "
                         f"{est_ms:.2f} | {board} | {stack} | {pub_ms:.2f} | {est_ms / pub_ms:.2f} |")
    lines += ["", f"Published figures: MLPerf Tiny v1.1 closed division, submitter Krai; source: {SOURCE}. "
              "Latency = 1000 / (inferences per second).",
              "", "Caveats: the host efficiency (XNNPACK on x86) is transferred to Cortex-M cores through peak "
              "MACs/cycle x clock only; the published runs use X-CUBE-AI or microTVM, not TFLite Micro; MCU "
              "memory wait states are not modelled (no bandwidth figure in the catalog). The ratio column is the "
              "estimator's error on these models, reported as is.", ""]
    text = "\n".join(lines)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "mlperf_tiny_estimates.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
