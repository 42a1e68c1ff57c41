"""Run a firmware ELF under ``qemu-system-arm`` with semihosting, in its own folder.

The firmware reads ``tinyship_in.bin`` and writes ``tinyship_out.bin`` in the folder QEMU runs in
(semihosting opens paths relative to QEMU's working directory) and prints ``TINYSHIP key value``
lines, parsed here. A firmware that prints ``TINYSHIP error``, does not finish, or runs past the
timeout is a UserError that names the machine and what the firmware said.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ground.errors import UserError

from . import tree


@dataclass
class QemuRun:
    values: dict[str, int]
    console: str
    wall_s: float


def command(machine: str, elf: Path, log: Path | None = None) -> list[str]:
    cmd = [tree.QEMU, "-M", machine, "-nographic", "-monitor", "none", "-serial", "null"]
    cmd += ["-semihosting-config", "enable=on,target=native", "-kernel", str(Path(elf).resolve())]
    if (
        log is not None
    ):  # every translated block and every execution of one (devices/firmware/icount.py)
        cmd += ["-d", "in_asm,exec,nochain", "-D", str(Path(log).resolve())]
    return cmd


def run(
    machine: str, elf: Path, folder: Path, timeout_s: float = 600, log: Path | None = None
) -> QemuRun:
    """Run ``elf`` on ``machine`` in ``folder``; the TINYSHIP values it printed."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            command(machine, elf, log), cwd=folder, capture_output=True, text=True,
            timeout=timeout_s, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"the firmware ran past {timeout_s:.0f} s on QEMU {machine} without finishing "
            f"({elf}); said: {str(exc.stdout or '')[-500:]}"
        ) from exc
    wall = time.monotonic() - t0
    text = (proc.stdout or "") + (proc.stderr or "")
    if "TINYSHIP error" in text or "TINYSHIP done" not in text:
        tail = " | ".join(text.strip().splitlines()[-6:])
        raise UserError(
            f"the firmware did not finish on QEMU {machine} (exit {proc.returncode}): {tail or 'no output'}"
        )
    values: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("TINYSHIP "):
            parts = line.split()[1:]
            for k, v in zip(parts[::2], parts[1::2]):
                if v.isdigit():
                    values[k] = int(v)
    return QemuRun(values, text, wall)


def run_streamed(machine: str, elf: Path, folder: Path, consume, timeout_s: float = 1800):
    """Run ``elf`` with the execution log streamed through a FIFO into ``consume(lines)`` (the log
    of a large model runs to gigabytes: it is never written to disk); returns what ``consume``
    returned. An exception from ``consume`` stops QEMU and is raised."""
    import os
    import threading

    fifo = Path(folder).resolve() / "qemu-log.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    out: dict = {}

    def reader() -> None:
        try:
            with open(fifo, errors="replace") as fh:
                out["value"] = consume(fh)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            out["error"] = exc

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    proc = subprocess.Popen(
        command(machine, elf, fifo), cwd=folder, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        t.join(timeout_s)
        if t.is_alive() or "error" in out:
            proc.kill()
        proc.wait(timeout=60)
        if t.is_alive():  # QEMU never opened the log: unblock the reader
            with open(fifo, "w"):
                pass
            t.join(10)
    finally:
        fifo.unlink(missing_ok=True)
    if "error" in out:
        raise out["error"]
    if "value" not in out:
        raise UserError(
            f"QEMU {machine} ran past {timeout_s:.0f} s while its instructions were counted"
        )
    return out["value"]
