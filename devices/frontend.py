"""The audio front-end's cost per inference on a device, added to the network's latency.

A keyword spotter pays for its features on every window. tinyship ships its front-end in C
(devices/frontend_c/: streaming, float32), and this cost model is fitted on that C's cycles as the
firmware counts them on each emulated core (devices/firmware/frontend.py: instructions from QEMU's
log by symbol, cycles from the core's timing table). ``benchmarks/frontend_cycles.py --write`` runs
a grid of front-end configurations on every core the firmware builds the front-end for, fits and
validates on configurations left out of the fit, and writes ``devices/frontend_cycles.json``
(commit, machine, toolchain versions, the coefficients per core, every measurement); this module
only reads it. Per core (terms: :func:`frame_terms`, :func:`window_terms`, from the card's
``input.frontend``):

- a frame: ``c . (FFT butterflies, n_fft points windowed/split/squared, mel + DCT MACs, mel bands
  (one log each), samples pushed, 1)``;
- a window (``tinyship_fe_window``, run before every inference): ``c . (coefficients x frames
  quantized, the same again when utterance_norm sums them, coefficients, 1)``.

``window`` mode costs every frame of the window plus a window; ``streaming`` the newest frame (hop
samples pushed) plus a window. A device whose core is not in the table (hosts, Pis, phones) gets
the reference core's (Cortex-M4F's) cycles scaled by the fp32 MACs per cycle of the two, and its
record says it was not calibrated on that core; one without an fp32 figure either (the PXA270: no
FPU, its soft-float front-end not calibrated) gets no front-end cost, and its record says why. A
missing or corrupt table is an :class:`~ground.errors.InternalError` naming the file and how to
rewrite it (the file ships with tinyship; quietly costing the front-end some other way would be a
lie in the record).

Its working memory sits next to the network's arena on a microcontroller (:func:`frontend_memory`):
the window of int16 samples the features of one inference are computed from, and the fp32 buffers
of one frame (windowed frame, FFT output, power spectrum, mel energies, MFCCs). Tables that do not
change (Hann window, mel weights, DCT) are constants in flash, and the int8 feature map is the
model's input tensor, which the arena already holds; neither is counted here.
"""

from __future__ import annotations

import math
from pathlib import Path

from ground.errors import InternalError

from . import committed_table
from .catalog import Device

CYCLES_FILE = Path(__file__).with_name("frontend_cycles.json")
SCHEMA = "tinyship.frontend_cycles/1"
WRITE_IT = "python -m benchmarks.frontend_cycles --write"
FRAME_TERMS = ("butterflies", "points", "macs", "logs", "samples", "frame")
WINDOW_TERMS = ("values", "cmn_values", "coefficients", "window")
# How the device's front-end is organised (recipe ``devices.frontend``). ``window``: every frame of
# the window is computed before each inference, from the window's samples. ``streaming``: one
# frame per hop as the audio arrives (TFLite Micro's micro_speech does this), into a ring of the
# window's frames; an inference then waits only for the newest frame and the window (the shipped
# C re-normalizes and re-quantizes the whole ring each time). The shipped C front-end
# (devices/frontend_c/) is organised as ``streaming`` (its clip helper runs every frame, as
# ``window``); every record names the mode used.
MODES = ("window", "streaming")
_PER_INFERENCE = {
    "window": "every frame of the window (clip_samples pushed) + the window's normalization and "
    "quantization per inference",
    "streaming": "the newest frame (hop samples pushed; the others were computed as their audio "
    "arrived) + the window's normalization and quantization per inference",
}
_NEEDS = ("n_fft", "n_mels", "frames", "coefficients", "features", "clip_samples", "hop")


def frame_terms(fe: dict, samples: float) -> dict[str, float]:
    """The work of one frame of the C front-end for card front-end ``fe``, ``samples`` pushed.

    Mel weights: the card's ``ops_per_inference.per_frame.filterbank_macs`` (the non-zero weights
    the C loops over), else the bound 2 x bins (each bin lies in at most two triangles)."""
    n = int(fe["n_fft"])
    per = (fe.get("ops_per_inference") or {}).get("per_frame") or {}
    mel = per.get("filterbank_macs")
    mel = 2 * (n // 2 + 1) if mel is None else int(mel)
    dct = int(fe["coefficients"]) * int(fe["n_mels"]) if fe["features"] == "mfcc" else 0
    return {
        "butterflies": n / 4 * math.log2(n / 2),  # radix-2 on the n/2-point complex FFT
        "points": float(n),  # window, even/odd split and power: loops over n/2 pairs
        "macs": float(mel + dct),
        "logs": float(fe["n_mels"]),
        "samples": float(samples),
        "frame": 1.0,
    }


def window_terms(fe: dict) -> dict[str, float]:
    """The work of ``tinyship_fe_window`` for card front-end ``fe``."""
    values = float(int(fe["coefficients"]) * int(fe["frames"]))
    return {
        "values": values,
        "cmn_values": values if fe.get("utterance_norm") else 0.0,
        "coefficients": float(fe["coefficients"]),
        "window": 1.0,
    }


def check_table(doc: object) -> str | None:
    """Why ``doc`` is not a front-end cycle table (None: it is)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return f"not a {SCHEMA} document"
    gen, cores, ref = doc.get("generated"), doc.get("cores"), doc.get("reference")
    if not isinstance(gen, dict) or any(not gen.get(k) for k in ("commit", "date", "versions")):
        return "generated.commit, .date or .versions is missing"
    if not isinstance(cores, dict) or not cores:
        return "no cores"
    if not isinstance(ref, dict) or ref.get("core") not in cores:
        return "reference.core is not one of the calibrated cores"
    for core, c in cores.items():
        for part, names in (("frame", FRAME_TERMS), ("window", WINDOW_TERMS)):
            co = (c or {}).get(part)
            if not isinstance(co, dict) or any(
                not isinstance(co.get(t), (int, float)) or co[t] < 0 for t in names
            ):
                return f"cores.{core}.{part} lacks a non-negative coefficient for {names}"
        if not isinstance((c.get("error") or {}).get("held_out"), dict):
            return f"cores.{core}.error.held_out is missing"
    return None


def cycle_table(path: Path | None = None) -> dict:
    """devices/frontend_cycles.json (cached while unchanged); InternalError when missing or corrupt."""
    p = Path(path or CYCLES_FILE)
    try:
        return committed_table.read(p, check_table)
    except committed_table.TableError as e:
        why = {"missing": "is missing (tinyship ships it)", "unreadable": f"could not be read "
               f"({e.detail})", "invalid": f"is corrupt ({e.detail})"}[e.kind]  # fmt: skip
        raise InternalError(
            f"the front-end cycle table {p} {why}; rewrite it with: {WRITE_IT}"
        ) from e


def cycles(fe: dict, core: str, samples: float, doc: dict) -> tuple[float, float]:
    """(cycles of one frame with ``samples`` pushed, cycles of one window) on a calibrated core."""
    c = doc["cores"][core]
    frame = sum(c["frame"][k] * v for k, v in frame_terms(fe, samples).items())
    return frame, sum(c["window"][k] * v for k, v in window_terms(fe).items())


def _per_inference(fe: dict, mode: str, core: str, doc: dict) -> tuple[float, float, float]:
    """(cycles per inference, per frame, per window) in ``mode`` on calibrated ``core``."""
    frames = int(fe["frames"])
    samples = int(fe["hop"]) if mode == "streaming" else int(fe["clip_samples"]) / frames
    frame, window = cycles(fe, core, samples, doc)
    return (frame if mode == "streaming" else frames * frame) + window, frame, window


def _streaming_ops(ops: dict, frames: int | None) -> tuple[float, float]:
    """flops and logs on one inference's critical path when frames are computed as audio arrives
    (the card's counts, reported beside the cycles; the cycles come from the fitted model)."""
    frames = int(ops.get("frames") or frames or 1)
    cmn = float((ops.get("total") or {}).get("cmn_flops") or 0)
    return (ops["flops"] - cmn) / frames + cmn, ops["logs"] / frames


def _core(dev: Device) -> str | None:
    return (dev.emulation or {}).get("core")


def _how(dev: Device, doc: dict) -> tuple[str | None, float, str]:
    """(calibrated core to use or None, cycle scale, the model's words for this device)."""
    core, gen, ref = _core(dev), doc["generated"], doc["reference"]
    where = f"devices/frontend_cycles.json, {gen['commit']} {gen['date'][:10]}"
    if core in doc["cores"]:
        timing = doc["cores"][core].get("cycle_source", "its timing table")
        words = (
            f"front-end: the shipped C front-end's cycles emulated on {core} ({timing}), fitted "
            f"per frame and per window ({where}), at the catalog clock"
        )
        return core, 1.0, words
    fp32, ref_fp32 = dev.macs_per_cycle("fp32"), float(ref["fp32_macs_per_cycle"])
    if not isinstance(fp32, (int, float)) or fp32 <= 0:
        return None, 0.0, ""
    words = (
        f"front-end: NOT calibrated on this device's core ({core or 'none emulated'}): "
        f"{ref['core']}'s emulated cycles of the shipped C front-end ({where}) x its fp32 "
        f"MACs/cycle {ref_fp32:g} / this device's {fp32:g}, at the catalog clock (an assumption: "
        "no error measured on this core)"
    )
    return ref["core"], ref_fp32 / fp32, words


def frontend_estimate(frontend: dict | None, dev: Device, mode: str = "window") -> dict | None:
    """Estimated ms of the card's front-end on ``dev`` per inference; None without a front-end."""
    if not frontend or not frontend.get("ops_per_inference"):
        return None
    ops = dict(frontend["ops_per_inference"])
    if mode == "streaming":
        ops["flops"], ops["logs"] = _streaming_ops(ops, frontend.get("frames"))
    base = {"flops": int(ops["flops"]), "logs": int(ops["logs"]), "mode": mode}
    missing = [k for k in _NEEDS if frontend.get(k) is None]
    if missing:
        return {**base, "ms": None, "why": f"card input.frontend lacks {', '.join(missing)}; "
                "front-end cost not included in the latency (re-run distill)"}  # fmt: skip
    doc = cycle_table()
    core, scale, model = _how(dev, doc)
    if core is None:
        return {**base, "ms": None, "why": f"{dev.name}'s core ({_core(dev) or 'none emulated'}) "
                "is not calibrated in devices/frontend_cycles.json and the catalog has no fp32 "
                "MACs/cycle for it (no FPU figure) to scale the reference core by; front-end cost "
                "not included in the latency"}  # fmt: skip
    if not dev.clock_hz:
        return {**base, "ms": None, "why": f"catalog has no clock for {dev.name}; front-end cost "
                "not included in the latency"}  # fmt: skip
    total, frame, window = (scale * x for x in _per_inference(frontend, mode, core, doc))
    mine = core == _core(dev)  # else scaled from the reference core: its error is not this one's
    err = doc["cores"][core]["error"]["held_out"].get("clip" if mode == "window" else "streaming")
    err = err if mine else None
    return {
        **base,
        "ms": total / dev.clock_hz * 1e3,
        "cycles": int(round(total)),
        "frame_cycles": int(round(frame)),
        "window_cycles": int(round(window)),
        "calibrated_core": core if mine else None,  # None: scaled from the reference core
        "held_out_error": err,
        "model": f"{model}; {mode}: {_PER_INFERENCE[mode]}"
        + (f"; held-out error up to {err:.1%} on {core}" if err is not None else ""),
    }


RAM_MODEL = (
    "front-end RAM: int16 window of clip_samples + fp32 frame (n_fft) + fp32 FFT output (n_fft, "
    "CMSIS-DSP arm_rfft_fast_f32 packs n_fft/2 complex bins) + fp32 power (n_fft/2 + 1) + fp32 mel "
    "(n_mels) [+ fp32 MFCCs (n_mfcc)] [+ fp32 feature map (coefficients x frames) when "
    "utterance_norm needs the window's mean first]; constant tables in flash and the int8 feature "
    "map (the model's input tensor, in the arena) not counted"
)


STREAMING_RAM_MODEL = (
    "front-end RAM (streaming): int16 ring of the last n_fft samples + fp32 frame (n_fft) + fp32 FFT "
    "output (n_fft) + fp32 power (n_fft/2 + 1) + fp32 mel (n_mels) [+ fp32 MFCCs (n_mfcc)] [+ fp32 ring "
    "of the window's coefficients x frames and their running sums when utterance_norm re-centres "
    "them]; without utterance_norm the int8 feature ring is the model's input tensor (in the arena)"
)


def frontend_memory(frontend: dict | None, mode: str = "window") -> dict | None:
    """Working memory (bytes) of the card's front-end for one inference window; None without one.

    Derived from the front-end's parameters (the card's ``input.frontend``) as a C front-end on an
    MCU would hold them: every frame of the window is computed before each inference (the same
    assumption as :func:`frontend_estimate`'s cost), so the whole window's samples are kept. The
    shipped C's state (``sizeof(tinyship_fe_t)``: n_fft int16 samples, the FFT, power and mel
    buffers and an fp32 ring of the window's coefficients) is within the ``streaming`` figure with
    ``utterance_norm``; without it the C still keeps the fp32 ring, which this model does not count.
    """
    if not frontend:
        return None
    need = ("clip_samples", "n_fft", "n_mels", "features")
    missing = [k for k in need if frontend.get(k) is None]
    if missing:
        return {
            "bytes": None,
            "why": f"card input.frontend lacks {', '.join(missing)}; front-end RAM not included",
        }
    n_fft = int(frontend["n_fft"])
    samples = (
        {"samples_int16": 2 * n_fft}
        if mode == "streaming"
        else {"window_int16": 2 * int(frontend["clip_samples"])}
    )
    buffers = {
        **samples,
        "frame_fp32": 4 * n_fft,
        "fft_out_fp32": 4 * n_fft,
        "power_fp32": 4 * (n_fft // 2 + 1),
        "mel_fp32": 4 * int(frontend["n_mels"]),
    }
    if frontend["features"] == "mfcc":
        buffers["mfcc_fp32"] = 4 * int(frontend.get("n_mfcc") or 0)
    if frontend.get("utterance_norm"):
        coeffs = int(frontend.get("coefficients") or frontend.get("n_mfcc") or frontend["n_mels"])
        buffers["feature_map_fp32"] = 4 * coeffs * int(frontend.get("frames") or 0)
        if mode == "streaming":
            buffers["running_sums_fp32"] = 4 * coeffs
    model = STREAMING_RAM_MODEL if mode == "streaming" else RAM_MODEL
    return {"bytes": sum(buffers.values()), "buffers": buffers, "mode": mode, "model": model}
