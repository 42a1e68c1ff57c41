"""What a linked firmware is: flash and static RAM from its sections (``arm-none-eabi-size -A``).

Flash is every allocated section placed in the ROM region (code, read-only data with the model,
unwind and copy tables) plus ``.data``, whose initial values are stored in flash. Static RAM is
``.data + .bss``. The arena section, the heap and the stack are reserved regions, not counted here:
the firmware's RAM adds the arena TFLM used and the stack's measured high-water mark to it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .cores import Core

RESERVED = (".heap", ".stack", ".stackseal", ".tinyship_arena")
NOT_LOADED = (".debug", ".comment", ".ARM.attributes", ".stab", ".gnu")


@dataclass
class ElfSizes:
    flash_bytes: int
    data_bytes: int
    bss_bytes: int
    sections: dict[str, int]
    model_bytes: int  # the flatbuffer array, inside flash


def sections(elf: Path) -> list[tuple[str, int, int]]:
    """(name, size, address) of every section, from ``arm-none-eabi-size -A -d``."""
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            rows.append((parts[0], int(parts[1]), int(parts[2])))
    return rows


def symbol_size(elf: Path, name: str) -> int:
    out = subprocess.run(
        ["arm-none-eabi-nm", "-S", "--defined-only", str(elf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[1], 16)
    return 0


def sizes(elf: Path, core: Core) -> ElfSizes:
    rom0, rom1 = core.rom
    secs = [(n, s, a) for n, s, a in sections(elf) if s and not n.startswith(NOT_LOADED)]
    flash = sum(s for n, s, a in secs if rom0 <= a < rom0 + rom1 and s and n not in RESERVED)
    data = sum(s for n, s, _ in secs if n == ".data")
    bss = sum(s for n, s, _ in secs if n == ".bss")
    return ElfSizes(
        flash + data,
        data,
        bss,
        {n: s for n, s, _ in secs},
        symbol_size(elf, "tinyship_model_data"),
    )
