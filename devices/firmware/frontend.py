"""The keyword spotter end to end on an emulated core: raw PCM in, C front-end and model, labels out.

Issues 35 and 36: the firmware is built with ``TINYSHIP_FRONTEND`` (``emulate.build(..., frontend=)``:
the C front-end of devices/frontend_c/ beside ``main.cc``), reads clips of int16 PCM through
semihosting, and writes per clip the output tensor, the int8 input tensor the front-end made and its
float features (sources.py). The outputs are compared byte for byte with the host TFLite Micro
interpreter's on those very inputs; the features and inputs are the caller's to compare with the
Python front-end (the devices stage does not import distill): tests/devices/frontend_core.py does.

Instructions are counted as the model's are (emulate.count): two logged runs on one clip that differ
by one front-end pass (front-end runs per row 1 and 2), attributed by symbol to the front-end's own
functions and newlib's ``logf`` they call, so the harness's semihosted file I/O
is left out: per clip (every frame of the window: ``devices.frontend: window``), per frame (``push``,
power spectrum, cepstrum, ``logf``) and per window (normalization and quantization): one frame plus
one window is a streaming inference (``devices.frontend: streaming``). Cycles come from the core's
timing table (timing.py), as the model's do.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ground.errors import UserError

from . import elf, emulate, icount, link, model_ops, qemu, sources, timing, tree
from .cores import Core

FRAME = ("tinyship_fe_push", "tinyship_fe_power", "tinyship_fe_cepstrum", "logf", "__ieee754_logf")
WINDOW = ("tinyship_fe_window", "tinyship_fe_offset", "tinyship_fe_round")
LIBM = ("logf", "__ieee754_logf", "__math_divzerof", "__math_invalidf")  # newlib's, for logf
MAX_LOG_LINES = 20_000_000  # one clip's front-end and one Invoke of a small model: far fewer


def is_frontend(symbol: str) -> bool:
    """A function of the front-end: its own (``tinyship_fe_*``) or the libm ones it calls."""
    return symbol.startswith("tinyship_fe") or symbol in LIBM


@dataclass
class ClipRun:
    outputs: np.ndarray  # [clips, output bytes] uint8: the output tensor per clip
    inputs: np.ndarray  # [clips, coefficients x frames] int8: the input tensor the front-end made
    features: np.ndarray  # [clips, coefficients, frames] float32: normalized features
    run: qemu.QemuRun


def run_clips(
    fw: link.Firmware, core: Core, clips: list[np.ndarray], fe: dict, timeout_s: float = 600
) -> ClipRun:
    """Every clip (int16 PCM, any length) through the front-end firmware once."""
    sources.write_pcm_rows(fw.folder / sources.IN_FILE, clips)
    out, fe_file = fw.folder / sources.OUT_FILE, fw.folder / sources.FE_FILE
    out.unlink(missing_ok=True)
    fe_file.unlink(missing_ok=True)
    r = qemu.run(core.machine, fw.elf, fw.folder, timeout_s=timeout_s)
    n = r.values.get("inputs", 0)
    raw = out.read_bytes()
    if n != len(clips) or len(raw) != n * r.values.get("output_bytes", -1):
        raise UserError(
            f"the front-end firmware on {core.machine} answered {n} of {len(clips)} clips"
        )
    coeffs, frames = int(fe["coefficients"]), int(fe["frames"])
    row = np.dtype([("q", "i1", coeffs * frames), ("x", "<f4", (coeffs, frames))])
    got = np.frombuffer(fe_file.read_bytes(), dtype=row)
    if len(got) != n:
        raise UserError(f"the front-end firmware wrote features of {len(got)} of {n} clips")
    outputs = np.frombuffer(raw, dtype=np.uint8).reshape(n, -1)
    return ClipRun(outputs, got["q"].copy(), got["x"].astype(np.float32), r)


def _lines(fh: Iterable[str]) -> list[str]:
    out = []
    for line in fh:
        out.append(line)
        if len(out) > MAX_LOG_LINES:
            raise icount.TooLong(f"more than {MAX_LOG_LINES:,} log lines")
    return out


def _only(lines: list[str], keep: Callable[[str], bool]) -> Iterator[str]:
    """The log with the instructions of blocks whose symbol ``keep`` rejects left out: icount then
    counts no execution of them (an unknown block is skipped)."""
    kept = False
    for line in lines:
        if line.startswith("IN:"):
            kept = keep(line[3:].strip())
        elif line.startswith("0x") and not kept:
            continue
        yield line


PARTS: dict[str, Callable[[str], bool]] = {
    "clip": is_frontend,
    "frame": lambda s: s in FRAME,
    "window": lambda s: s in WINDOW,
}


def _logged(fw: link.Firmware, core: Core, clip: np.ndarray, repeat: int, fe_runs: int) -> list:
    sources.write_pcm_rows(fw.folder / sources.IN_FILE, [clip], repeat=repeat, fe_runs=fe_runs)
    return qemu.run_streamed(core.machine, fw.elf, fw.folder, _lines)


def _parts(one: list[str], two_fe: list[str]) -> dict[str, icount.Counts]:
    out = {
        part: icount.parse_lines(_only(two_fe, keep)).minus(icount.parse_lines(_only(one, keep)))
        for part, keep in PARTS.items()
    }
    out["frontend_and_io"] = icount.parse_lines(two_fe).minus(icount.parse_lines(one))
    return out


def count_frontend(fw: link.Firmware, core: Core, clip: np.ndarray) -> dict[str, icount.Counts]:
    """:func:`count` without the model's ``Invoke()`` (two logged runs, not three): what
    benchmarks/frontend_cycles.py fits devices/frontend.py's cost model on."""
    return _parts(_logged(fw, core, clip, 1, 1), _logged(fw, core, clip, 1, 2))


def count(fw: link.Firmware, core: Core, clip: np.ndarray) -> dict[str, icount.Counts]:
    """Instructions of one front-end pass over ``clip`` per part (``clip``, ``frame`` over all of
    the clip's frames, ``window``) and of one ``Invoke()`` (``model``)."""
    one = _logged(fw, core, clip, 1, 1)
    out = _parts(one, _logged(fw, core, clip, 1, 2))
    two_model = _logged(fw, core, clip, 2, 1)
    out["model"] = icount.parse_lines(two_model).minus(icount.parse_lines(one))
    return out


def flash_bytes(elf_path: Path) -> dict[str, int]:
    """Flash of the front-end's own code (FUNC) and constant tables (OBJECT): its ``tinyship_fe_*``
    symbols in the ELF's symbol table (``readelf -s``); newlib's ``logf`` not included."""
    text = subprocess.run(
        ["arm-none-eabi-readelf", "-sW", str(elf_path)], capture_output=True, text=True, check=True
    ).stdout
    out = {"code": 0, "tables": 0}
    for line in text.splitlines():
        parts = line.split()  # Num: Value Size Type Bind Vis Ndx Name
        if len(parts) == 8 and parts[7].startswith("tinyship_fe") and parts[6] != "UND":
            kind = {"FUNC": "code", "OBJECT": "tables"}.get(parts[3])
            size = int(parts[2], 0) if parts[2].startswith("0x") else int(parts[2])
            if kind:
                out[kind] += size
    return out


def _timed(core: Core, c: icount.Counts, per: int, clock_hz: float | None, ws: int | None) -> dict:
    cyc = timing.cycles(core.name, c, ws)
    return {
        "instructions": c.instructions / per,
        "cycles": cyc.cycles / per,
        "upper_cycles": cyc.upper_cycles / per,
        "ms": None if not clock_hz else cyc.cycles / per / clock_hz * 1e3,
    }


def counted(core: Core, counts: dict, frames: int, clock_hz: float | None, ws: int | None) -> dict:
    """Per-inference figures of the counts: the front-end per clip, per frame, per window and per
    streaming inference (one frame and one window), and the model's one Invoke()."""
    fe = {
        "clip": _timed(core, counts["clip"], 1, clock_hz, ws),
        "frame": _timed(core, counts["frame"], frames, clock_hz, ws),
        "window": _timed(core, counts["window"], 1, clock_hz, ws),
    }
    fe["streaming_inference"] = {
        k: None if fe["frame"][k] is None else fe["frame"][k] + fe["window"][k]
        for k in ("instructions", "cycles", "upper_cycles", "ms")
    }
    fe["by_function"] = counts["clip"].to_dict(top=20)["by_function"]
    fe["with_file_io"] = counts["frontend_and_io"].instructions
    fe["cycle_model"] = timing.MODEL_NAME
    return {
        "frontend": fe,
        "model": {
            **counts["model"].to_dict(),
            **emulate.latency(core, counts["model"], clock_hz, ws),
        },
    }


def emulate_clips(
    tflite: Path,
    core: Core,
    fe: dict,
    clips: list[np.ndarray],
    clock_hz: float | None = None,
    wait_states: int | None = None,
    count_instructions: bool = True,
) -> tuple[dict, ClipRun]:
    """Build the front-end firmware for ``tflite`` and the card front-end ``fe``, run ``clips``
    (int16 PCM) on ``core``; the record and what the firmware computed."""
    from ground import tflm

    tree.require_tools()
    ops = model_ops.read(Path(tflite))
    why = emulate.refusal(ops)
    if why:
        raise UserError(why)
    fw, _ = emulate.build(Path(tflite), core, ops, frontend=fe)
    got = run_clips(fw, core, clips, fe)
    shape = [max(int(s), 1) for s in ops.inputs[0]["shape"][1:]]
    host = tflm.run_raw(Path(tflite), got.inputs.reshape(len(clips), *shape))
    sizes = elf.sizes(fw.elf, core)
    v = got.run.values
    arena, stack = v["arena_used_bytes"], v["stack_used_bytes"]
    rec = {
        "measured": f"emulated {core.machine}",
        "core": core.name,
        "clips": len(clips),
        "versions": emulate.versions(host.runtime),
        "elf": str(fw.elf),
        "flash_bytes": sizes.flash_bytes,
        "frontend_flash": flash_bytes(fw.elf),
        **emulate.ram_fields(sizes, arena, stack, frontend_state=v["frontend_state_bytes"]),
        "bit_exact": emulate.compare(got.outputs, host.logits),
        "qemu_wall_s": round(got.run.wall_s, 3),
    }
    if count_instructions:
        rec.update(
            counted(core, count(fw, core, clips[0]), int(fe["frames"]), clock_hz, wait_states)
        )
    return rec, got
