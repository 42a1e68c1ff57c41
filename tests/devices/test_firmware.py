"""Firmware on emulated cores (devices/firmware/): parsing, board files and refusals here; one small
model end to end on the Cortex-M4F (library cached under build/tflm-lib); the full matrix is slow."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from devices.firmware import board, cores, icount, model_ops, timing, tree
from ground.errors import UserError

TOOLS = tree.tools_available()
try:
    TREE = tree.tflm_dir()
except UserError:
    TREE = None
needs_tree = pytest.mark.skipif(TREE is None, reason="no TFLite Micro tree (set TFLM_DIR)")
needs_tools = pytest.mark.skipif(
    not TOOLS or TREE is None,
    reason="arm-none-eabi-gcc / qemu-system-arm missing (make system-deps)",
)

# a QEMU 7.2 '-d in_asm,exec,nochain' excerpt: a Thumb block (with an Armv8.1-M instruction QEMU's
# disassembler splits into .byte halves), executed three times; then a block reached by a branch
LOG = """----------------
IN: loop
0x00000400:  b510       push     {r4, lr}
0x00000402:  6801       ldr      r1, [r0]
0x00000404:  6842       ldr      r2, [r0, #4]
0x00000406:  fb21 3302  smlad    r3, r1, r2, r3
0x0000040a:  f04e       .byte    0x4e, 0xf0
0x0000040c:  e001       b        #0x412
0x0000040e:  d3f7       blo      #0x400

Trace 0: 0x7f00 [00000000/00000400/00000110/ff000200] loop
Trace 0: 0x7f00 [00000000/00000400/00000110/ff000200] loop
----------------
IN: done
0x00000500:  bd10       pop      {r4, pc}

Trace 0: 0x7f00 [00000000/00000400/00000110/ff000200] loop
Trace 0: 0x7f40 [00000000/00000500/00000110/ff000200] done
"""


def test_instructions_are_counted_per_block_execution_and_class(tmp_path):
    log = tmp_path / "q.log"
    log.write_text(LOG)
    c = icount.parse(log)
    # loop: push, ldr, ldr, smlad, one 32-bit instruction split in two .byte halves, blo = 6
    assert c.instructions == 3 * 6 + 1
    assert c.by_class["undecoded"] == 3 and c.by_class["mul"] == 3
    assert c.by_class["load"] == 3 and c.by_class["load_pipelined"] == 3  # TRM 3.3.2
    assert c.regs["store_multiple"] == 6 and c.regs["load_multiple"] == 2
    assert c.taken_branches == 3  # loop -> loop twice (0x410 != 0x400), loop -> done
    assert c.by_symbol == {"loop": 18, "done": 1}
    one = timing.cycles("cortex-m4f", c, wait_states=5)
    assert one.upper_cycles == one.cycles + 3 * 5


@pytest.mark.parametrize(
    "mnemonic,ops,cls",
    [("ldr.w", "r2, [r3, #0x88]", "load"), ("strd", "r0, r1, [sp]", "store_pair"),
     ("pop", "{r4, r5, pc}", "load_multiple"), ("smlabb", "r0, r1, r2, r3", "mul"),
     ("bne", "#0x10", "branch"), ("cbz", "r0, #0x8", "branch"), ("bic", "r0, r0, #1", "alu"),
     ("vfma.f32", "s0, s1, s2", "fmac"), ("vldrb.s8", "q0, [r0]", "vector"), ("sdiv", "r0, r1", "div")],
)  # fmt: skip
def test_instruction_classes(mnemonic, ops, cls):
    assert icount.classify(mnemonic, ops) == cls


@needs_tree
@pytest.mark.parametrize("name", list(cores.CORES))
def test_linker_script_places_the_board_memory_arena_and_zeroes_bss(name):
    core = cores.get(name)
    text = board.linker_script(TREE, core)
    assert f"0x{core.rom[0]:08X}" in text and f"0x{core.ram[0]:08X}" in text
    assert board.ARENA_SECTION in text
    if core.dfp:  # the DFP leaves .bss to a C start-up that is not linked: the zero table does it
        zero = text[text.index("__zero_table_start__ = .;") : text.index("__zero_table_end__ = .;")]
        assert "LONG (ADDR(.bss))" in zero and "/*  .bss initialization" not in zero


@needs_tree
def test_an_op_tflite_micro_lacks_is_refused_with_its_name():
    ops = model_ops.ModelOps(["CONV_2D", "NOT_AN_OP"], ["MyCustom"])
    with pytest.raises(UserError, match=r"custom op 'MyCustom', NOT_AN_OP"):
        model_ops.registrations(TREE, ops)
    assert model_ops.registrations(TREE, model_ops.ModelOps(["CONV_2D"], [])) == ["AddConv2D"]


@needs_tree
def test_a_depthwise_only_model_gets_the_conv_helpers_its_kernel_uses():
    """depthwise_conv_common.cc takes conv_common.cc's tensor indices (through conv.h): a reduced
    library for DEPTHWISE_CONV_2D without CONV_2D must still hold conv_common.cc, or it fails to link."""
    from devices.firmware import library

    for name in ("cortex-m4f", "cortex-m55"):
        every = library.library_sources(TREE, cores.get(name))
        only_dw = model_ops.kernel_sources(
            TREE, every, model_ops.ModelOps(["DEPTHWISE_CONV_2D"], [])
        )
        stems = {Path(s).stem for s in only_dw}
        assert {"depthwise_conv_common", "conv_common"} <= stems, (name, sorted(stems))
        only_fc = model_ops.kernel_sources(TREE, every, model_ops.ModelOps(["FULLY_CONNECTED"], []))
        assert "conv_common" not in {Path(s).stem for s in only_fc}


def test_float_and_multi_io_files_are_refused_for_firmware():
    from devices.firmware.emulate import refusal

    spec = {"dtype": "int8", "shape": [1, 4], "scale": 0.1, "zero_point": 0}
    assert refusal(model_ops.ModelOps(["ADD"], [], [spec], [spec], 0)) is None
    assert "computes in float" in refusal(model_ops.ModelOps(["ADD"], [], [spec], [spec], 3))
    assert "2 inputs" in refusal(model_ops.ModelOps(["ADD"], [], [spec, spec], [spec], 0))


def test_a_catalog_emulation_entry_is_checked(tmp_path):
    from devices.catalog import load_catalog

    cat = load_catalog()
    assert cat.get("cortex-m4f-stm32l4r5").emulation["flash_wait_states"]["value"] == 5
    assert {d.emulation["core"] for d in cat.devices.values() if d.emulation} == set(cores.CORES)
    raw = cat.get("cortex-m4f-stm32l4r5").to_dict()
    dev = {"class": "mcu", **{k: v for k, v in raw["figures"].items()}, "formats": ["tflite"]}
    dev["emulation"] = {"core": "cortex-m4f", "machine": "mps2-an386"}  # no source
    (tmp_path / "extra.yaml").write_text(json.dumps({"devices": {"my-m4": dev}}))
    with pytest.raises(UserError, match="my-m4' emulation must be a mapping"):
        load_catalog(str(tmp_path / "extra.yaml"))


@needs_tools
def test_int8_file_runs_on_the_emulated_m4f_byte_identical_with_the_host(exported_run, tmp_path):
    """Why (issue 35): model_data.c was never linked with TFLite Micro nor run, and the MCU arena was
    the 64-bit host interpreter's. Now the file is built into firmware, run on 100+ holdout rows in
    QEMU, compared byte for byte, and its RAM is the 32-bit core's."""
    import devices

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    rep = devices.profile(
        run,
        ["cortex-m4f-stm32l4r5"],
        force=True,
        emulate=True,
        settings=devices.Settings(runs=3, warmup=1),
    )
    recs = [r for r in rep.records if r.device == "cortex-m4f-stm32l4r5"]
    em_rec = next(r for r in recs if r.artifact == "model.int8-full.tflite")
    em = em_rec.emulated
    assert em_rec.method == "emulated" and em["measured"] == "emulated mps2-an386"
    assert em["bit_exact"]["identical"] and em["bit_exact"]["inputs"] >= 100
    assert "holdout" in em["bit_exact"]["rows"]
    r = em["ram"]
    assert em_rec.ram_bytes == r["data"] + r["bss"] + r["arena_used"] + r["stack_high_water"]
    assert 0 < r["arena_used"] < r["host_arena_bytes"]  # pointers are 4 bytes on the core
    assert 0 < r["stack_high_water"] < board.STACK_BYTES
    size = Path(run / "export" / "model.int8-full.tflite").stat().st_size
    assert em["flash"]["model_bytes"] == size and em_rec.flash_bytes > size + 20_000
    assert em["instructions"]["instructions"] > 1000
    assert em_rec.latency_ms == pytest.approx(em["cycles"]["value"] / 120e6 * 1e3)
    assert (
        "QEMU emulator version" in em["versions"]["qemu"]
        and "arm-none-eabi" in em["versions"]["compiler"]
    )
    others = [r for r in recs if r.artifact != "model.int8-full.tflite" and r.emulated]
    assert all("refused" in r.emulated for r in others)  # float files are not built into firmware
    fw = json.loads((run / "ship" / "manifest.json").read_text())
    entry = next(f for f in fw["files"] if f["file"] == "model.int8-full.tflite")
    folder = run / "ship" / entry["firmware"]["dir"] / "cortex-m4f"
    assert (folder / "Makefile").is_file() and (folder / "tflm_sources.txt").is_file()
    lib = Path(em["library"]["archive"])
    plan = subprocess.run(
        ["make", "-n", f"TFLM_LIB={lib}"], cwd=folder, capture_output=True, text=True
    )
    assert plan.returncode == 0 and "-o firmware.elf" in plan.stdout  # building it: the slow test


@pytest.mark.slow
@needs_tools
def test_the_shipped_firmware_folder_builds_and_runs_with_make(exported_run, tmp_path):
    """The ship bundle's folder is what was emulated: its Makefile links the same firmware."""

    import devices
    from devices.firmware import emulate, library, sources

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    devices.profile(run, ["cortex-m4f-stm32l4r5"], force=True, emulate=True,
                    settings=devices.Settings(runs=3, warmup=1))  # fmt: skip
    folder = run / "ship" / "model.int8-full.firmware" / "cortex-m4f"
    core = cores.get("cortex-m4f")
    ops = model_ops.read(run / "export" / "model.int8-full.tflite")
    lib = library.build(
        core, subset=model_ops.kernel_sources(TREE, library.library_sources(TREE, core), ops)
    )
    subprocess.run(
        ["make", "-s", f"TFLM_LIB={lib.archive}"], cwd=folder, check=True, capture_output=True
    )
    sources.write_inputs(folder / sources.IN_FILE, emulate.random_rows(ops, 3))
    out = subprocess.run(
        ["make", "-s", "run", f"TFLM_LIB={lib.archive}"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "TINYSHIP done" in out.stdout + out.stderr
    assert (folder / sources.OUT_FILE).stat().st_size == 3 * 10


@pytest.mark.slow
@needs_tools
@pytest.mark.parametrize(
    "device", ["cortex-m7-stm32h7a3", "cortex-m33-nrf5340", "cortex-m55-alif-e7", "pda-pxa270"]
)
def test_the_matrix_int8_file_on_every_core(exported_run, tmp_path, device):
    """Why (issue 35): the PDA's latency came from the x86 host fit although it runs TFLite Micro
    reference kernels; now every core runs the file and counts its instructions."""
    import devices

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    rep = devices.profile(
        run, [device], force=True, emulate=True, settings=devices.Settings(runs=3, warmup=1)
    )
    rec = next(
        r for r in rep.records if r.device == device and r.artifact == "model.int8-full.tflite"
    )
    assert rec.method == "emulated" and rec.emulated["bit_exact"]["identical"]
    assert rec.emulated["instructions"]["instructions"] > 1000
    if device == "pda-pxa270":
        assert rec.emulated["kernels"] == "reference" and rec.latency["source"] == "emulated cycles"


@pytest.mark.slow
@needs_tools
def test_kws_reference_on_m4f_against_its_published_latency(shared_data, tmp_path):
    """Why (issue 35): the MCU estimate was fitted on the published runs it was checked on. The
    emulated cycles are not fitted: their error against the published KWS run is out of sample."""
    import devices

    kws = shared_data / "mlperf_tiny" / "kws_ref_model.tflite"
    rep = devices.profile_files([kws], tmp_path / "p", ["cortex-m4f-stm32l4r5"], emulate=True,
                                settings=devices.Settings(runs=3, warmup=1))  # fmt: skip
    rec = next(r for r in rep.records if r.device == "cortex-m4f-stm32l4r5")
    pub = rec.emulated["published"]
    assert pub["model"] == "kws" and pub["published_ms"] == pytest.approx(1e3 / 5.497)
    assert rec.emulated["bit_exact"]["identical"]
    band = rec.emulated["error_band"]
    assert {r["model"] for r in band["runs"]} == {"kws", "ad"} and band["ratio_min"] > 0
    np.testing.assert_allclose(pub["ratio"], rec.latency_ms / pub["published_ms"])


def test_printed_lines_name_the_figures_their_band_and_each_refusal_once():
    from devices.firmware import summary_lines
    from devices.records import Record

    em = {"measured": "emulated mps2-an500", "flash_bytes": 1000, "ram_bytes": 900,
          "ram": {"arena_used": 500, "stack_high_water": 100},
          "bit_exact": {"inputs": 120, "differing_inputs": 0}, "instructions": {"instructions": 7},
          "latency_ms": 1.5, "clock_mhz": 280, "error_band": {"ratio_min": None}}  # fmt: skip
    no = {"refused": "the file computes in float", "kind": "not_emulated"}

    def rec(dev, art, e):
        return Record(art, "tflite", "x", dev, "mcu", "emulated", 1.5, {}, 1, "", 1, "", {}, "fits",
                      emulated=e)  # fmt: skip

    lines = summary_lines(
        [rec("m7", "a.tflite", em), rec("m7", "f.tflite", no), rec("m4", "f.tflite", no)]
    )
    assert "byte-identical with the host on 120/120 inputs, 7 instructions/inference" in lines[0]
    assert "no published run on this core: no error band" in lines[0]
    assert lines[1] == "  not emulated f.tflite on m7, m4: the file computes in float"
