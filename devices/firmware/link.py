"""Compile a firmware's own sources and link them with the cached TFLite Micro library into an ELF."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ground.errors import UserError

from . import board, library, tree
from .cores import Core


@dataclass
class Firmware:
    elf: Path
    folder: Path
    compile_link_s: float  # compiling main, model and board files, then linking


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"{what} failed: {proc.stderr.strip()[-2000:]}")


def link(core: Core, lib: library.Library, folder: Path, sources: list[Path]) -> Firmware:
    """Compile ``sources`` (main.cc, model_data.c, ...) and the board files in ``folder``, link
    against ``lib`` with ``--gc-sections``; returns the ELF. An undefined symbol is a UserError."""
    root = tree.tflm_dir()
    t0 = time.monotonic()
    elf = folder / "firmware.elf"
    stamp = folder / "firmware.key"
    key = _key(core, lib, [Path(s) for s in sources])
    if elf.is_file() and stamp.is_file() and stamp.read_text() == key:
        board.files(root, core, folder)  # the same board files, for the ship bundle
        return Firmware(elf, folder, 0.0)  # built from these very inputs already
    stamp.unlink(missing_ok=True)
    base = library.flags(root, core)
    if core.dfp:
        base = [*base, f"-I{root / f'third_party/cmsis_dfp/Device/{core.dfp}/Config'}"]
    objs = []
    for src in [*sources, *board.files(root, core, folder)]:
        obj = folder / (Path(src).name + ".o")
        cxx = str(src).endswith(".cc")
        cmd = [tree.GXX if cxx else tree.GCC, "-c", "-Os", *base]
        cmd += list(library.CXXFLAGS) if cxx else ["-std=c11"]
        _run([*cmd, str(src), "-o", str(obj)], f"compiling {Path(src).name} for {core.name}")
        objs.append(str(obj))
    cmd = [
        tree.GXX, *core.cflags, "-nostartfiles", "--specs=rdimon.specs",
        "-T", str(folder / "firmware.ld"), "-Wl,--gc-sections", f"-Wl,-Map={folder / 'firmware.map'}",
        *objs, "-Wl,--start-group", str(lib.archive), "-lm", "-lc", "-lrdimon", "-lgcc",
        "-Wl,--end-group", "-o", str(elf),
    ]  # fmt: skip
    _run(cmd, f"linking the firmware for {core.name}")
    stamp.write_text(key)
    return Firmware(elf, folder, time.monotonic() - t0)


def _key(core: Core, lib: library.Library, sources: list[Path]) -> str:
    """What the ELF is made of: its sources' bytes, the board files, the archive and the flags."""
    import hashlib

    root = tree.tflm_dir()
    h = hashlib.sha256(repr((core, lib.flags, tree.gcc_version())).encode())
    h.update(board.linker_script(root, core).encode())
    h.update((board.START_ARM if core.dfp is None else board.START_M).encode())
    st = lib.archive.stat()
    h.update(f"{lib.archive}:{st.st_size}:{st.st_mtime_ns}".encode())
    for s in sources:
        h.update(s.read_bytes())
    return h.hexdigest()
