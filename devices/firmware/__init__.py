"""Firmware for the MCU and PDA cores: a shipped int8 .tflite built with TensorFlow Lite Micro,
run in QEMU, proven byte for byte against the host interpreter, measured and counted.

One module per job: ``tree`` (where TFLM and the tools are), ``cores`` (flags, machines, memory
maps), ``library`` (the cached TFLM build), ``model_ops`` (the ops a file uses and their
registration), ``sources`` (model array and ``main.cc``), ``board`` (start-up, system and linker
script from the DFP), ``link``, ``qemu``, ``elf`` (flash and RAM), ``icount`` (executed
instructions), ``timing`` (cycles per core), ``bands`` (the error against published runs),
``emulate`` (one file on one core), ``step`` (the profile stage's emulate step) and ``bundle`` (the
buildable folder the ship step writes). Imports of heavy tools happen inside functions.
"""

from __future__ import annotations


def summary_lines(records) -> list[str]:
    """One line per emulated record (profile's Record objects): flash, RAM, instructions, latency
    and the error against a published figure where the file is a published reference model."""
    out = []
    refused: dict[tuple[str, str], list[str]] = {}
    for r in records:
        em = getattr(r, "emulated", None)
        if not em:
            continue
        if "refused" in em:  # one line per file and reason, naming every device
            refused.setdefault((r.artifact, em["refused"]), []).append(r.device)
            continue
        bx = em["bit_exact"]
        line = (
            f"  emulated {r.device} ({em['measured']}): {r.artifact}: flash {em['flash_bytes']:,} B, "
            f"RAM {em['ram_bytes']:,} B (arena {em['ram']['arena_used']:,}, stack "
            f"{em['ram']['stack_high_water']:,}), byte-identical with the host on "
            f"{bx['inputs'] - bx['differing_inputs']}/{bx['inputs']} inputs"
        )
        n = (em.get("instructions") or {}).get("instructions")
        if n is not None:
            line += f", {n:,} instructions/inference"
        if em.get("latency_ms") is not None:
            line += f", cycle model {em['latency_ms']:.2f} ms at {em.get('clock_mhz')} MHz"
        pub = em.get("published")
        if pub:
            line += (
                f"; published {pub['published_ms']:.2f} ms ({pub['model']}, {pub['stack']}): "
                f"error {100 * (pub['ratio'] - 1):+.1f} %"
            )
        band = em.get("error_band") or {}
        if band.get("ratio_min") is not None:
            line += (
                f"; core's band emulated/published {band['ratio_min']:.2f}-{band['ratio_max']:.2f}"
            )
        elif em.get("latency_ms") is not None:
            line += "; no published run on this core: no error band"
        out.append(line)
    for (art, why), devs in refused.items():
        out.append(f"  not emulated {art} on {', '.join(devs)}: {why}")
    return out
