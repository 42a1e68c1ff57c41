"""One .tflite on one core: build the firmware, run it in QEMU, prove it, measure it, count it.

Steps (each a function of its own module): refuse what the core cannot run (model_ops) -> library
(cached) -> sources and board files -> link -> run every input row under QEMU and compare the output
bytes with the host TFLite Micro interpreter's (ground.tflm in a child process) -> flash and RAM
from the ELF plus the arena and stack the firmware reported -> instructions per inference from two
logged runs (one and two ``Invoke()`` on one row) -> cycles from the core's timing table. The record
says ``measured: emulated <machine>`` with the QEMU, compiler and TFLite Micro versions.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ground.errors import UserError

from . import board, elf, icount, library, link, model_ops, qemu, sources, timing, tree
from .cores import Core

WORK = tree.REPO / "build" / "firmware"
MIN_ROWS = 100


def refusal(ops: model_ops.ModelOps) -> str | None:
    """Why this file is not built into firmware (None: it is): float or hybrid compute, or I/O the
    harness does not feed."""
    if ops.float_tensors:
        return (
            f"the file computes in float ({ops.float_tensors} float activation tensors: a float or "
            "hybrid model); on an MCU budget tinyship builds full-int8 files only (CMSIS-NN kernels are "
            "integer, the PXA270 has no FPU). Export with precision int8-full"
        )
    if len(ops.inputs or []) != 1 or len(ops.outputs or []) != 1:
        return (
            f"the firmware harness feeds one input and reads one output; this file has "
            f"{len(ops.inputs or [])} inputs and {len(ops.outputs or [])} outputs"
        )
    return None


def random_rows(ops: model_ops.ModelOps, n: int, seed: int = 0) -> np.ndarray:
    """``n`` reproducible rows over the input dtype's full range, for a file that has no holdout."""
    spec = ops.inputs[0]
    dt = np.dtype(spec["dtype"])
    info = np.iinfo(dt)
    shape = [max(int(s), 1) for s in spec["shape"][1:]]
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max + 1, size=(n, *shape), dtype=np.int64).astype(dt)


def quantize_rows(ops: model_ops.ModelOps, x: np.ndarray) -> np.ndarray:
    """Float holdout rows -> the input tensor's dtype with its scale and zero point."""
    from ground.tflm import quantize

    spec = ops.inputs[0]
    shape = [max(int(s), 1) for s in spec["shape"][1:]]
    q = quantize(np.asarray(x, np.float32), spec["scale"], spec["zero_point"], spec["dtype"])
    return q.reshape(len(q), *shape)


def build(
    tflite: Path, core: Core, ops: model_ops.ModelOps, frontend: dict | None = None
) -> tuple[link.Firmware, library.Library]:
    """The firmware ELF for ``tflite`` on ``core`` (library cached; subset archive unless the full
    library is built already); ``frontend``: a card's ``input.frontend``, built in with the C
    front-end (TINYSHIP_FRONTEND: PCM rows in, devices/firmware/frontend.py)."""
    root = tree.tflm_dir()
    regs = model_ops.registrations(root, ops)
    full = library.folder(root, core) / "libtflm.a"
    subset = None
    if not full.is_file():
        subset = model_ops.kernel_sources(root, library.library_sources(root, core), ops)
    lib = library.build(core, subset=subset)
    blob = Path(tflite).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()[:12]
    folder = WORK / lib.key / digest
    srcs = [folder / "main.cc", folder / "model_data.c"]
    if frontend:
        from .. import frontend_c

        folder = folder / f"frontend-{frontend_c.digest(frontend)}"
        srcs = [folder / "main.cc", folder / "model_data.c", folder / "tinyship_frontend.c"]
        frontend_c.write(folder, frontend)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_data.c").write_text(sources.model_c(blob, Path(tflite).name))
    main = sources.main_cc(
        Path(tflite).name, regs, board.arena_capacity(core), board.ARENA_SECTION, bool(frontend)
    )
    (folder / "main.cc").write_text(main)
    fw = link.link(core, lib, folder, srcs)
    return fw, lib


def run_rows(
    fw: link.Firmware, core: Core, rows: np.ndarray, timeout_s: float = 600
) -> tuple[np.ndarray, qemu.QemuRun]:
    """Every row through the firmware once; its outputs (one row per input) and the QEMU run."""
    sources.write_inputs(fw.folder / sources.IN_FILE, rows)
    out = fw.folder / sources.OUT_FILE
    out.unlink(missing_ok=True)
    r = qemu.run(core.machine, fw.elf, fw.folder, timeout_s=timeout_s)
    raw = out.read_bytes()
    n = r.values.get("inputs", 0)
    if n != len(rows) or len(raw) != n * r.values.get("output_bytes", -1):
        raise UserError(f"the firmware on {core.machine} answered {n} of {len(rows)} inputs")
    return np.frombuffer(raw, dtype=np.uint8).reshape(n, -1), r


def count(fw: link.Firmware, core: Core, row: np.ndarray) -> icount.Counts:
    """Instructions of one ``Invoke()``: a logged run invoking twice on ``row`` minus one invoking once."""
    counts = []
    for repeat in (1, 2):
        sources.write_inputs(fw.folder / sources.IN_FILE, row[None], repeat=repeat)
        counts.append(qemu.run_streamed(core.machine, fw.elf, fw.folder, icount.parse_lines))
    return counts[1].minus(counts[0])


def compare(fw_out: np.ndarray, host: np.ndarray) -> dict:
    """Byte-for-byte comparison of the firmware's outputs with the host interpreter's."""
    host_b = np.ascontiguousarray(host).view(np.uint8).reshape(len(host), -1)
    same = fw_out.shape == host_b.shape
    diff = np.flatnonzero((fw_out != host_b).any(axis=1)) if same else np.arange(len(host_b))
    return {
        "inputs": int(len(host_b)),
        "identical": bool(same and diff.size == 0),
        "differing_inputs": int(diff.size),
        "first_difference": None if diff.size == 0 else int(diff[0]),
    }


def emulate(
    tflite: Path,
    core: Core,
    rows: np.ndarray | None = None,
    rows_source: str = "",
    clock_hz: float | None = None,
    wait_states: int | None = None,
    count_instructions: bool = True,
    n_random: int = MIN_ROWS,
) -> tuple[dict, icount.Counts | None]:
    """The emulated record of ``tflite`` on ``core`` and the instructions of one inference;
    ``rows``: inputs in the input dtype (None: ``n_random`` random rows). A file the core cannot run raises a
    UserError naming why."""
    from ground import tflm

    tree.require_tools()
    ops = model_ops.read(Path(tflite))
    why = refusal(ops)
    if why:
        raise UserError(why)
    if rows is None:
        rows, rows_source = random_rows(ops, n_random), f"{n_random} random rows (seed 0)"
    fw, lib = build(tflite, core, ops)
    t0 = time.monotonic()
    fw_out, run = run_rows(fw, core, rows)
    wall = time.monotonic() - t0
    host = tflm.run_raw(Path(tflite), rows)
    sizes = elf.sizes(fw.elf, core)
    arena, stack = run.values["arena_used_bytes"], run.values["stack_used_bytes"]
    if stack >= board.STACK_BYTES:
        raise UserError(
            f"the firmware used its whole {board.STACK_BYTES}-byte stack on {core.name}"
        )
    rec = {
        "measured": f"emulated {core.machine}",
        "core": core.name,
        "machine": core.machine,
        "kernels": core.kernels,
        "versions": versions(host.runtime),
        "library": lib.record(),
        "link_s": round(fw.compile_link_s, 2),
        "elf": str(fw.elf),
        "flash_bytes": sizes.flash_bytes,
        "flash": {
            "model_bytes": sizes.model_bytes,
            "code_and_other_bytes": sizes.flash_bytes - sizes.model_bytes,
            "sections": sizes.sections,
        },  # fmt: skip
        **ram_fields(sizes, arena, stack, host_arena_bytes=host.arena_bytes),
        "bit_exact": {**compare(fw_out, host.logits), "rows": rows_source},
        "qemu_wall_s": round(wall, 3),
        "qemu_wall_s_per_100": round(wall * 100 / max(len(rows), 1), 3),
    }
    if not count_instructions:
        return rec, None
    try:
        c = count(fw, core, rows[0])
    except icount.TooLong as exc:
        rec["instructions"] = {"not_counted": f"{exc}: too long a run to count from QEMU's log"}
        return rec, None
    rec["instructions"] = c.to_dict()
    rec.update(latency(core, c, clock_hz, wait_states))
    return rec, c


def ram_fields(sizes: elf.ElfSizes, arena: int, stack: int, **extra: int) -> dict:
    """A firmware's RAM as every emulated record states it: static data, the arena and the stack
    the run reported, plus ``extra`` figures beside them (not added to the total)."""
    return {
        "ram_bytes": sizes.data_bytes + sizes.bss_bytes + arena + stack,
        "ram": {"data": sizes.data_bytes, "bss": sizes.bss_bytes, "arena_used": arena,
                "stack_high_water": stack, **extra},
    }  # fmt: skip


def latency(core: Core, c: icount.Counts, clock_hz: float | None, ws: int | None) -> dict:
    """Cycles of one inference on ``core`` and its latency at ``clock_hz`` (a board's figures)."""
    cyc = timing.cycles(core.name, c, ws)
    ms = None if not clock_hz else cyc.cycles / clock_hz * 1e3
    upper = None if not clock_hz else cyc.upper_cycles / clock_hz * 1e3
    return {
        "cycles": {
            "value": cyc.cycles,
            "upper": cyc.upper_cycles,
            "model": timing.MODEL_NAME,
            "source": cyc.source,
            "flash_wait_states": ws,
        },  # fmt: skip
        "latency_ms": ms,
        "latency_upper_ms": upper,
    }


def versions(host_runtime: str) -> dict:
    """What an emulated figure was made with: QEMU, the Arm compiler, the TFLite Micro commit and
    the host interpreter its outputs were compared with."""
    return {
        "qemu": tree.qemu_version(),
        "compiler": tree.gcc_version(),
        "tflite_micro": tree.tflm_commit(tree.tflm_dir()),
        "host_reference": host_runtime,
    }
