"""The audio front-end's cost per inference on a device, added to the network's latency.

A keyword spotter pays for its features on every window: the card's ``input.frontend``
(written by the distill stage's audio loader) counts the FFT, power spectrum, mel
filterbank and DCT work as fp32 flops plus the logs. Cost model (an assumption, not a
measurement): flops / (2 x fp32 MACs per cycle x ``FLOP_EFFICIENCY``) + ``LOG_CYCLES`` per
log, at the catalog clock. ``FLOP_EFFICIENCY`` 0.5 puts a 256-point real FFT at ~5k cycles
on a Cortex-M4F, the order CMSIS-DSP's ``arm_rfft_fast_f32`` is reported at; no board run
calibrates it here, and each record says so.

tinyship ships this front-end in C (devices/frontend_c/: ``ship/<file>.c/`` and the firmware folder,
streaming, float32), and counts its instructions and cycles on the emulated Cortex-M4F
(devices/firmware/frontend.py; figures in docs/kws.md). Those counts are not fed back here: the
estimate below stays the one every record uses and names, and it is lower than the emulated count.

Its working memory sits next to the network's arena on a microcontroller (:func:`frontend_memory`):
the window of int16 samples the features of one inference are computed from, and the fp32 buffers
of one frame (windowed frame, FFT output, power spectrum, mel energies, MFCCs). Tables that do not
change (Hann window, mel weights, DCT) are constants in flash, and the int8 feature map is the
model's input tensor, which the arena already holds; neither is counted here.
"""

from __future__ import annotations

from .catalog import Device

FLOP_EFFICIENCY = 0.5
LOG_CYCLES = 40
MODEL = (
    "front-end: flops / (2 * fp32_macs_per_cycle * 0.5) + 40 cycles per log, at the catalog clock "
    "(assumed, not calibrated on a board)"
)
# How the device's front-end is organised (recipe ``devices.frontend``). ``window``: every frame of
# the window is computed before each inference, from the window's samples. ``streaming``: one
# frame per hop as the audio arrives (TFLite Micro's micro_speech does this), into a ring of the
# window's frames; an inference then waits only for the newest frame (and, with utterance_norm,
# the whole map re-centred on the updated mean). The shipped C front-end (devices/frontend_c/) is
# organised as ``streaming`` (its clip helper runs every frame, as ``window``); both modes here are
# cost and RAM models, and every record names the one used.
MODES = ("window", "streaming")
_PER_INFERENCE = {
    "window": "every frame of the window per inference",
    "streaming": "the newest frame per inference (the others were computed as their audio "
    "arrived) [+ utterance_norm re-centring the whole map]",
}


def _streaming_ops(ops: dict, frames: int | None) -> tuple[float, float]:
    """flops and logs on one inference's critical path when frames are computed as audio arrives."""
    frames = int(ops.get("frames") or frames or 1)
    cmn = float((ops.get("total") or {}).get("cmn_flops") or 0)
    return (ops["flops"] - cmn) / frames + cmn, ops["logs"] / frames


def frontend_estimate(frontend: dict | None, dev: Device, mode: str = "window") -> dict | None:
    """Estimated ms of the card's front-end on ``dev`` per inference; None without a front-end."""
    if not frontend or not frontend.get("ops_per_inference"):
        return None
    ops = dict(frontend["ops_per_inference"])
    if mode == "streaming":
        ops["flops"], ops["logs"] = _streaming_ops(ops, frontend.get("frames"))
    clock, fp32 = dev.clock_hz, dev.macs_per_cycle("fp32")
    if not clock or not isinstance(fp32, (int, float)) or fp32 <= 0:
        return {
            "ms": None,
            "flops": ops["flops"],
            "why": f"catalog has no fp32 MACs/cycle or clock for {dev.name} (no FPU figure); "
            "front-end cost not included in the latency",
        }
    cycles = ops["flops"] / (2 * fp32 * FLOP_EFFICIENCY) + ops["logs"] * LOG_CYCLES
    return {
        "ms": cycles / clock * 1e3,
        "cycles": int(cycles),
        "flops": int(ops["flops"]),
        "logs": int(ops["logs"]),
        "mode": mode,
        "model": f"{MODEL}; {mode}: {_PER_INFERENCE[mode]}",
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
