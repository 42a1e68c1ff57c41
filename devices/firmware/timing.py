"""Cycles from executed instructions: a per-core timing table, not a fit.

cycles = sum over instruction classes of (executed instructions x the class's cycles)
         + registers moved by load/store-multiple instructions
         + taken branches x the pipeline refill,
and an upper bound that adds the flash wait states of the board's clock to every taken branch
(an instruction fetch from flash with no cache or prefetch hit). Nothing here is fitted on a
published latency, so its error against the published MLPerf Tiny runs (catalog ``stacks:``) is
out of sample; those runs used TFLite Micro v2.3.1 with the CMSIS-NN of its day, older than the
tree built here, so part of the error is the library's, not the model's.

Sources. Cortex-M4: Technical Reference Manual (Arm DDI 0439B) §3.3.1 Table 3-1 "Cortex-M4
instruction set summary" (data processing, MUL/MLA, SMLAD, SMULL/UMLAL: 1 cycle; LDR: 2; STR with an
immediate offset: 1; LDM/STM/PUSH/POP: 1+N; LDRD/STRD: 1+N, N=2; SDIV/UDIV: 2-12; B/BL/BX: 1+P, P = 1-3
pipeline refill) and §3.3.2 (a load after a load pipelines: one cycle less); §7.2.3 Table 7-1 for
the FPU (VADD/VMUL 1, VMLA/VFMA 3, VDIV/VSQRT 14). Where the TRM gives a range we take its middle
(SDIV 7, P = 2): an assumption. Cortex-M7, M33 and M55: their TRMs publish no per-instruction cycle
table, so the M4 table is applied (the M7's dual issue and the M55's beat-wise MVE timing are not
modelled; instructions QEMU 7.2 cannot disassemble, e.g. MVE and low-overhead loops, cost 1 cycle).
XScale (PXA270): 1 cycle per instruction issue, 2 + N for load/store multiple and a 4-cycle taken
branch penalty (its BTB is not modelled): an assumption after Intel's XScale Core Developer's
Manual, not checked against it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .icount import Counts

M4_TABLE = {
    "alu": 1, "mul": 1, "div": 7, "load": 2, "load_pipelined": 1, "store": 1, "load_pair": 3,
    "store_pair": 3, "load_multiple": 1, "store_multiple": 1, "branch": 1, "fp": 1, "fmac": 3,
    "fdiv": 14, "vector": 1, "undecoded": 1,
}  # fmt: skip
XSCALE_TABLE = {**{k: 1 for k in M4_TABLE}, "load_multiple": 2, "store_multiple": 2, "div": 1}
TABLES = {
    "cortex-m4f": (M4_TABLE, 2, "Arm Cortex-M4 TRM (DDI 0439B) Tables 3-1 and 7-1"),
    "cortex-m7": (
        M4_TABLE,
        2,
        "the Cortex-M4 table (the M7 TRM has none; dual issue not modelled)",
    ),
    "cortex-m33": (M4_TABLE, 2, "the Cortex-M4 table (the M33 TRM has none)"),
    "cortex-m55": (
        M4_TABLE,
        2,
        "the Cortex-M4 table (the M55 TRM has none; MVE beats not modelled)",
    ),
    "pxa270": (XSCALE_TABLE, 4, "assumed XScale issue costs (not checked against Intel's manual)"),
}
MODEL_NAME = "tinyship emulated-cycles-v1: TRM cycles per instruction class + taken-branch refill"


@dataclass
class Cycles:
    cycles: int
    upper_cycles: int  # with the board's flash wait states on every taken branch
    source: str
    wait_states: int | None


def cycles(core: str, counts: Counts, wait_states: int | None) -> Cycles:
    """Cycles for ``counts`` (one inference) on ``core``; ``wait_states``: the board's flash wait
    states at its clock (None: not known, the upper bound equals the estimate)."""
    table, refill, source = TABLES[core]
    c = sum(n * table.get(k, 1) for k, n in counts.by_class.items())
    c += sum(counts.regs.values())  # 1 + N for load/store multiple: the N part
    c += counts.taken_branches * refill
    upper = c + counts.taken_branches * (wait_states or 0)
    return Cycles(int(c), int(upper), source, wait_states)
