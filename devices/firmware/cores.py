"""The cores the firmware builder targets: compiler flags, kernel set, QEMU machine, memory map.

One entry per core, looked up by name (a registry, not an if-chain). The flags follow
../shared/vendor/tflite-micro/README.md (what was checked there); the memory maps are those of the
QEMU machines that emulate the core (QEMU's ``hw/arm/mps2.c``, ``mps2-tz.c`` and ``mainstone.c``),
so a firmware linked here boots on the machine that runs it. A catalog device names its core in
``emulation.core`` (devices/catalog.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

from ground.errors import UserError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Core:
    """How to compile, link and run for one core."""

    name: str
    title: str
    cflags: tuple[str, ...]  # architecture flags, for every C and C++ file
    defines: tuple[str, ...]  # the DFP device's macros (or none for a core without a DFP)
    kernels: str  # "cmsis_nn" or "reference"
    machine: str  # qemu-system-arm -M
    dfp: str | None  # Device folder of the vendored Cortex_DFP (startup, system, linker script)
    rom: tuple[int, int]  # (origin, length) where code and the model go
    ram: tuple[int, int]  # (origin, length) for data, bss, arena, heap and stack
    isa: str  # "thumb" (M profile) or "arm" (ARMv5TE)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.kernels}"


CORES: dict[str, Core] = {
    c.name: c
    for c in (
        Core(
            "cortex-m4f",
            "Arm Cortex-M4 with FPv4-SP (Armv7E-M, DSP extension)",
            ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
            ("ARMCM4", "ARMCM4_FP"),
            "cmsis_nn",
            "mps2-an386",
            "ARMCM4",
            (0x00000000, 4 * MiB),  # ZBT SSRAM1 (code)
            (0x20000000, 4 * MiB),  # ZBT SSRAM2/3
            "thumb",
        ),
        Core(
            "cortex-m7",
            "Arm Cortex-M7 with FPv5-D16 (Armv7E-M, DSP extension, dual issue)",
            ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
            ("ARMCM7", "ARMCM7_DP"),
            "cmsis_nn",
            "mps2-an500",
            "ARMCM7",
            (0x00000000, 4 * MiB),
            (0x20000000, 4 * MiB),
            "thumb",
        ),
        Core(
            "cortex-m33",
            "Arm Cortex-M33 with FPv5-SP (Armv8-M Mainline, DSP extension)",
            ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
            ("ARMCM33", "ARMCM33_DSP_FP"),
            "cmsis_nn",
            "mps2-an505",
            "ARMCM33",
            (
                0x10000000,
                4 * MiB,
            ),  # secure alias of ZBT SSRAM1: the board boots in the secure state
            (0x38000000, 4 * MiB),  # secure alias of ZBT SSRAM2 and SSRAM3
            "thumb",
        ),
        Core(
            "cortex-m55",
            "Arm Cortex-M55 with Helium (Armv8.1-M, MVE)",
            ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
            ("ARMCM55",),
            "cmsis_nn",
            "mps3-an547",
            "ARMCM55",
            (0x00000000, 512 * 1024),  # ITCM
            (0x20000000, 512 * 1024),  # DTCM
            "thumb",
        ),
        Core(
            "pxa270",
            "Intel XScale PXA270 (ARMv5TE, no FPU; reference kernels)",
            ("-mcpu=xscale", "-marm", "-mfloat-abi=soft"),
            (),
            "reference",
            "mainstone",
            None,
            (0xA0008000, 16 * MiB),  # SDRAM (a PDA runs its code from SDRAM)
            (0xA1008000, 16 * MiB),
            "arm",
        ),
    )
}


def get(name: str) -> Core:
    """The core called ``name``, or a UserError listing the cores."""
    if name not in CORES:
        raise UserError(
            f"unknown firmware core '{name}'; known cores: {', '.join(CORES)} "
            "(devices/firmware/cores.py). Fix the device's 'emulation.core' in the catalog."
        )
    return CORES[name]
