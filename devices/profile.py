"""The devices stage: analyse every exported artifact, measure where reachable, estimate elsewhere, judge.

Writes ``profile/`` (profile.json, report.md, report.html, plots) and ``ship/`` (the
artifacts that fit at least one device, with manifest.json), each through
``tinyship.rundir.staged_dir`` so a failure leaves the previous results intact.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyship import rundir
from tinyship.errors import UserError

from . import analysis as _analysis
from . import budgets as _budgets
from . import estimate as _estimate
from .catalog import Catalog, Device, load_catalog
from .runners import Measurement
from .runners import get as get_runner

MCU_PRECISIONS = (
    "fp32",
    "int8-full",
)  # TFLite Micro: float and full-int8 kernels; no hybrid (int8-dynamic) kernels


@dataclass
class Record:
    artifact: str
    format: str
    precision: str
    device: str
    device_class: str
    method: str  # measured | estimated | none
    latency_ms: float | None
    latency: dict[str, Any] | None
    ram_bytes: int | None
    ram_method: str
    flash_bytes: int | None
    flash_method: str
    budget: dict[str, float]
    verdict: str
    reasons: list[str] = field(default_factory=list)


@dataclass
class ProfileReport:
    run: str
    records: list[Record]
    analyses: dict[str, dict]
    estimator: dict[str, Any]
    devices: list[dict]
    path: Path
    ship: list[str]
    not_checked: list[str]


def runnable_reason(dev: Device, fmt: str, precision: str) -> str | None:
    """None if ``fmt``/``precision`` can run on ``dev``; else why not (documented in devices/README.md)."""
    if fmt in ("mlpackage", "coreml"):
        return "Core ML runs only on Apple devices; no Apple device in this catalog (add one with --catalog)"
    if fmt not in dev.formats:
        return f"no {fmt} runtime for {dev.cls} class '{dev.name}' (runnable formats: {', '.join(dev.formats)})"
    if dev.cls in ("mcu", "pda") and precision not in MCU_PRECISIONS:
        return f"TFLite Micro has no kernels for '{precision}' (runs {', '.join(MCU_PRECISIONS)})"
    return None


def _memory(a: dict, dev: Device) -> tuple[int | None, str, int | None, str]:
    peak = a.get("peak_activation_bytes")
    tflm = a.get("tflm_arena_bytes")
    deq = a.get("dequantized_weight_bytes") or 0
    ovh = (dev.runtime.get("ram_overhead_bytes") or {}).get("value")
    code = (dev.runtime.get("flash_overhead_bytes") or {}).get("value")
    if peak is None:
        return None, "not analysed", a["bytes"], "file bytes"
    if dev.cls in ("mcu", "pda"):
        arena = max(peak, tflm or 0)
        ram = arena + deq + (ovh or 0)
        rm = (
            (
                "max(arena plan, TFLM arena measured by export)"
                if tflm
                else "arena plan (no TFLM arena recorded)"
            )
            + (" + dequantized weights" if deq else "")
            + (" + runtime overhead" if ovh else "; runtime RAM overhead not found, not included")
        )
        flash = a["bytes"] + (code or 0)
        fm = "model flatbuffer bytes" + (
            " + runtime code" if code else "; runtime code size not found, not included"
        )
        return int(ram), rm, int(flash), fm
    ram = peak + (a.get("weight_bytes") or 0) + deq + (ovh or 0)
    return (
        int(ram),
        "arena plan + weights loaded in RAM"
        + (" + dequantized weights" if deq else "")
        + ("" if ovh else "; runtime overhead not found, not included"),
        int(a["bytes"]),
        "file bytes (storage)",
    )


def _input_npy(run_dir: Path, tmp: Path) -> Path | None:
    cal = run_dir / rundir.CALIBRATION
    if not cal.is_file():
        return None
    x = rundir.read_npz(cal, "calibration.npz", ("x",))["x"]
    p = tmp / "input.npy"
    np.save(p, x[:1].astype(np.float32), allow_pickle=False)
    return p


def _progress(items, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, file=sys.stderr, leave=False)
    except ImportError:
        return items


def profile(
    run_dir: str | Path,
    devices: list[str] | None = None,
    force: bool = False,
    ssh: list[str] | None = None,
    ssh_config: str | None = None,
    ssh_options: list[str] | None = None,
    remote_python: str = "python3",
    adb: list[str] | None = None,
    benchmark_model: str | None = None,
    threads: int | None = None,
    runs: int | None = None,
    warmup: int | None = None,
    catalog: str | None = None,
    budgets: dict[str, dict[str, float]] | None = None,
    pin_core: int | None = None,
) -> ProfileReport:
    """Profile every artifact of ``run_dir/export`` on the selected devices; write profile/ and ship/."""
    run_dir = Path(run_dir)
    card = rundir.read_json(run_dir / rundir.CARD, "student card (student/card.json)")
    exports = rundir.read_json(run_dir / rundir.EXPORTS, "exports record (export/exports.json)")
    for stage in ("profile", "ship"):
        if (run_dir / stage).exists() and not force:
            raise UserError(
                f"'{run_dir / stage}' already exists. Pass --force to replace it "
                "(the old one is kept until the new one is complete)."
            )
    section = _budgets.recipe_devices_section(card)
    threads = threads or section["threads"]
    runs = runs or section["runs"]
    warmup = section["warmup"] if warmup is None else warmup
    if adb and not benchmark_model:
        raise UserError(
            "--adb needs --benchmark-model PATH (TFLite's benchmark_model binary for the phone)."
        )
    cat: Catalog = load_catalog(catalog)
    selected = cat.select(devices or section["targets"])
    if "host" not in [d.name for d in selected]:
        selected = [
            cat.get("host")
        ] + selected  # the host is always measured: it calibrates the estimator
    host = cat.get("host")
    budget_over = {**(section["budgets"] or {}), **(budgets or {})}
    for name in budget_over:
        if name not in cat.devices and not name.startswith(("ssh:", "adb:")):
            cat.get(name)  # raises, listing the known devices

    artifacts = []
    for art in exports.get("artifacts", []):
        p = run_dir / "export" / art["file"]
        if art.get("error") or not p.exists():
            continue
        artifacts.append((art, p))
    if not artifacts:
        raise UserError(
            f"'{run_dir / rundir.EXPORTS}' lists no usable artifact (all failed or missing). "
            "Re-run the export stage."
        )

    analyses: dict[str, dict] = {}
    an_obj: dict[str, _analysis.Analysis] = {}
    for art, p in _progress(artifacts, "analyse"):
        a = _analysis.analyse(p, art.get("tflm_arena_bytes"))
        an_obj[art["file"]] = a
        analyses[art["file"]] = dataclasses.asdict(a)

    measurements: list[
        tuple[dict, str, str, Measurement]
    ] = []  # (artifact, device name, device class, m)
    not_checked: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinyship-profile-") as tmpd:
        inp = _input_npy(run_dir, Path(tmpd))
        host_run = get_runner("host")
        for art, p in _progress(artifacts, "host"):
            if art["format"] not in host.formats:
                continue
            m = host_run(
                p, input_npy=inp, threads=threads, warmup=warmup, runs=runs, pin_core=pin_core
            )
            measurements.append((art, "host", "host", m))
        for target in ssh or []:
            run = get_runner("ssh")
            for art, p in _progress(artifacts, f"ssh {target}"):
                if art["format"] in ("onnx", "tflite"):
                    m = run(
                        p,
                        target=target,
                        input_npy=inp,
                        threads=threads,
                        warmup=warmup,
                        runs=runs,
                        pin_core=pin_core,
                        remote_python=remote_python,
                        ssh_config=ssh_config,
                        ssh_options=ssh_options,
                    )
                    measurements.append((art, f"ssh:{target}", "sbc", m))
        for serial in adb or []:
            run = get_runner("adb")
            for art, p in _progress(artifacts, f"adb {serial}"):
                if art["format"] == "tflite":
                    m = run(
                        p,
                        serial=serial,
                        benchmark_model=benchmark_model,
                        threads=threads,
                        warmup=warmup,
                        runs=runs,
                    )
                    measurements.append((art, f"adb:{serial}", "phone", m))

    # estimator: fit on host measurements, leave-one-out error
    samples, labels = [], []
    for art, dname, _, m in measurements:
        if dname == "host":
            samples.append((an_obj[art["file"]], _estimate.family(m.runtime), m.p50_ms / 1e3))
            labels.append(art["file"])
    loo = _estimate.leave_one_out(samples, labels, host)
    fitted = _estimate.fit(samples, host) if samples else None
    estimator = {
        "model": _estimate.MODEL_NAME,
        "calibrated_on": "host p50 latencies",
        "params": fitted.params if fitted else None,
        "n_measurements": len(samples),
        "loo": dataclasses.asdict(loo),
        "loo_mape": None
        if loo.median_ape is None
        else loo.median_ape / 100.0,  # fraction, for tinyship.summary
        "transfer": "device estimate = same efficiencies and per-op overhead cycles, with the device's own "
        "MACs/cycle and clock; TFLite Micro and benchmark_model use the LiteRT overhead; "
        "devices with published int8 runs on the same board (catalog 'published') take their "
        "int8 conv/FC efficiency from those runs",
    }

    records: list[Record] = []
    by_art_dev = {(a["file"], d): m for a, d, _, m in measurements}
    device_names = (
        [(d.name, d.cls, d) for d in selected]
        + [(f"ssh:{t}", "sbc", None) for t in ssh or []]
        + [(f"adb:{s}", "phone", None) for s in adb or []]
    )
    for art, _p in artifacts:
        a = analyses[art["file"]]
        for dname, dcls, dev in device_names:
            ref = (
                dev
                if dev is not None
                else cat.get("rpi4" if dcls == "sbc" else "phone-midrange-a78")
            )
            budget = {**ref.budget, **budget_over.get(dname, {})}
            why = (
                runnable_reason(ref, art["format"], art["precision"])
                if dev is not None
                else (
                    None
                    if art["format"] in ("onnx", "tflite")
                    and (dcls == "sbc" or art["format"] == "tflite")
                    else f"{dname} runner does not run {art['format']}"
                )
            )
            ram, rm, flash, fm = _memory(a, ref)
            m = by_art_dev.get((art["file"], dname))
            lat, latd, method = None, None, "none"
            if why is None and m is not None:
                lat, method = m.p50_ms, "measured"
                latd = dataclasses.asdict(m)
            elif why is None and fitted is not None and dev is not None:
                fam = "onnxruntime" if art["format"] == "onnx" else "litert"
                s = fitted.predict_s(an_obj[art["file"]], dev, fam)
                if s is not None:
                    lat, method = s * 1e3, "estimated"
                    latd = {
                        "estimate_ms": lat,
                        "model": _estimate.MODEL_NAME,
                        "runtime_family": fam,
                        "efficiency": _estimate.efficiency_source(dev),
                        "loo_median_ape_pct": loo.median_ape,
                        "loo_n": loo.n,
                    }
                else:
                    latd = {
                        "estimate_ms": None,
                        "why": "catalog lacks this device's clock or MACs/cycle for the "
                        "model's dtype (figure 'not found')",
                    }
            v, reasons = _budgets.verdict(lat, ram, flash, why, budget)
            records.append(
                Record(
                    art["file"],
                    art["format"],
                    art["precision"],
                    dname,
                    dcls,
                    method,
                    lat,
                    latd,
                    ram,
                    rm,
                    flash,
                    fm,
                    budget,
                    v,
                    reasons,
                )
            )

    not_checked += [
        "latency on catalog devices other than the host is estimated, not measured",
        "the adb runner is untested on a phone (parser tested on recorded outputs only)",
    ]
    if any(a["format"] in ("mlpackage", "coreml") for a, _ in artifacts):
        not_checked.append("Core ML (.mlpackage) latency and RAM: prediction needs macOS/iOS")
    doc = {
        "schema": "tinyship.profile/1",
        "run": card.get("run", run_dir.name),
        "created": _dt.datetime.now(_dt.UTC).isoformat(),
        "card_sha256": rundir.sha256_file(run_dir / rundir.CARD),
        "exports_sha256": rundir.sha256_file(run_dir / rundir.EXPORTS),
        "settings": {"threads": threads, "runs": runs, "warmup": warmup, "pin_core": pin_core},
        "devices": [d.to_dict() for d in selected],
        "artifacts": analyses,
        "estimator": estimator,
        "records": [dataclasses.asdict(r) for r in records],
        "not_checked": not_checked,
    }
    from . import report as _report

    with rundir.staged_dir(run_dir, "profile", force=force) as out:
        rundir.atomic_write_json(out / "profile.json", doc)
        _report.write(out, doc, card, exports)
    passing = sorted({r.artifact for r in records if r.verdict == "fits"})
    with rundir.staged_dir(run_dir, "ship", force=force) as out:
        _write_ship(out, run_dir, passing, card, exports, records)
    return ProfileReport(
        doc["run"],
        records,
        analyses,
        estimator,
        doc["devices"],
        run_dir / rundir.PROFILE,
        passing,
        not_checked,
    )


def _write_ship(
    out: Path, run_dir: Path, passing: list[str], card: dict, exports: dict, records: list[Record]
) -> None:
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    files = []
    for name in passing:
        src = run_dir / "export" / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        else:
            shutil.copy2(src, out / name)
        a = arts[name]
        files.append(
            {
                "file": name,
                "format": a["format"],
                "precision": a["precision"],
                "bytes": rundir.path_bytes(out / name),
                "sha256": rundir.sha256_file(out / name),
                "input": a.get("input"),
                "output": a.get("output"),
                "accuracy": a.get("accuracy"),
                "parity": a.get("parity"),
                "devices": {
                    r.device: {
                        "verdict": r.verdict,
                        "method": r.method,
                        "latency_ms": r.latency_ms,
                        "ram_bytes": r.ram_bytes,
                        "flash_bytes": r.flash_bytes,
                    }
                    for r in records
                    if r.artifact == name
                },
            }
        )
    rundir.atomic_write_json(
        out / "manifest.json",
        {
            "schema": "tinyship.ship/1",
            "run": card.get("run"),
            "input": card.get("input"),
            "output": card.get("output"),
            "labels": card.get("labels"),
            "metrics": (card.get("metrics") or {}).get("holdout"),
            "files": files,
            "rule": "an artifact ships when it fits at least one profiled device (see profile/profile.json)",
        },
    )


def check(
    run_dir: str | Path,
    budgets: dict[str, dict[str, float]] | None = None,
    artifacts: list[str] | None = None,
) -> tuple[bool, list[dict]]:
    """Re-judge profile.json against budgets: a CI gate.

    Devices checked: those named in ``budgets``, else in the recipe's budgets, else every
    profiled device. Without ``artifacts`` each checked device needs at least one fitting
    artifact (a device where nothing can be judged, e.g. no throughput figure, is reported
    as 'not judged' and gates only when a budget names it); with ``artifacts`` every named
    artifact must fit every checked device.
    """
    run_dir = Path(run_dir)
    doc = rundir.read_json(run_dir / rundir.PROFILE, "profile (profile/profile.json)")
    card = rundir.read_json(run_dir / rundir.CARD, "student card (student/card.json)")
    recipe_budgets = _budgets.recipe_devices_section(card)["budgets"] or {}
    over = budgets or recipe_budgets
    recs = doc["records"]
    known = sorted({r["device"] for r in recs})
    for d in over:
        if d not in known:
            raise UserError(
                f"--budget names device '{d}', which is not in this profile; profiled devices: {', '.join(known)}."
            )
    names = sorted({r["artifact"] for r in recs})
    for a in artifacts or []:
        if a not in names:
            raise UserError(
                f"--artifact '{a}' is not in this profile; artifacts: {', '.join(names)}."
            )
    checked = list(over) if over else known
    rows, ok = [], True
    for d in checked:
        fits_any = False
        for r in recs:
            if r["device"] != d or (artifacts and r["artifact"] not in artifacts):
                continue
            b = {**r["budget"], **over.get(d, {})}
            v, reasons = _budgets.verdict(
                r["latency_ms"],
                r["ram_bytes"],
                r["flash_bytes"],
                r["reasons"][0] if r["verdict"] == "not runnable" else None,
                b,
            )
            rows.append(
                {
                    "device": d,
                    "artifact": r["artifact"],
                    "verdict": v,
                    "reasons": reasons,
                    "budget": b,
                }
            )
            fits_any |= v == "fits"
            if artifacts and v != "fits":
                ok = False
        judged = any(
            r["verdict"] not in ("unknown", "not runnable") for r in rows if r["device"] == d
        )
        if not artifacts and not fits_any:
            if over or judged:
                ok = False
            else:  # nothing could be judged here (no figure, no runtime) and no budget was asked for
                rows.append(
                    {
                        "device": d,
                        "artifact": "-",
                        "verdict": "not judged",
                        "budget": {},
                        "reasons": [
                            "no artifact could be judged on this device (unknown latency or not "
                            "runnable); give it a --budget to make it gate"
                        ],
                    }
                )
    return ok, rows
