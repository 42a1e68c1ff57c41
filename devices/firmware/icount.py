"""Executed instructions from QEMU's execution log, per function and per instruction class.

``qemu-system-arm -d in_asm,exec,nochain`` writes every translated block (``IN: <symbol>`` followed by
its instructions) and, with chaining off, a ``Trace`` line for every execution of a block. Summing
block length x executions gives the instructions executed; the block's symbol (QEMU looks it up in
the ELF) gives them per function, and each block's mnemonics give them per class for the timing
model (devices/firmware/timing.py). A taken branch is a block whose next executed block does not
start where it ends. Instructions per inference come from two runs that invoke once and twice on one
input: their difference is one ``Invoke()``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_INSN = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]+(?: [0-9a-f]+)?)\s+(\S+)\s*(.*)$")
_TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")

LOADS = ("ldr", "ldm", "pop", "vldr", "vldm", "vpop", "vld")
STORES = ("str", "stm", "push", "vstr", "vstm", "vpush", "vst")
MULS = ("mul", "mla", "mls", "smul", "smla", "smlsd", "smuad", "smusd", "smmul", "smmla",
        "smmls", "umul", "umla", "umaal", "smlal", "smull", "usad")  # fmt: skip
BRANCHES = ("b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh")
CONDS = ("eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt",
         "le", "al")  # fmt: skip


@dataclass
class Block:
    end: int  # address after the last instruction
    insns: Counter  # instructions per class
    regs: Counter  # registers moved by load/store-multiple instructions
    symbol: str

    @property
    def n(self) -> int:
        return sum(self.insns.values())


@dataclass
class Counts:
    instructions: int = 0
    taken_branches: int = 0
    blocks: int = 0  # block executions
    by_class: Counter = field(default_factory=Counter)
    regs: Counter = field(default_factory=Counter)
    by_symbol: Counter = field(default_factory=Counter)

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.instructions - other.instructions,
            self.taken_branches - other.taken_branches,
            self.blocks - other.blocks,
            _sub(self.by_class, other.by_class),
            _sub(self.regs, other.regs),
            _sub(self.by_symbol, other.by_symbol),
        )

    def to_dict(self, top: int = 12) -> dict:
        return {
            "instructions": self.instructions,
            "taken_branches": self.taken_branches,
            "by_class": dict(sorted(self.by_class.items())),
            "multiple_registers": dict(sorted(self.regs.items())),
            "by_function": dict(
                zip(
                    demangle([k for k, _ in self.by_symbol.most_common(top)]),
                    [v for _, v in self.by_symbol.most_common(top)],
                )
            ),  # fmt: skip
        }


def demangle(names: list[str]) -> list[str]:
    """C++ symbol names as a reader knows them (``arm-none-eabi-c++filt``; unchanged if absent)."""
    import subprocess

    try:
        out = subprocess.run(["arm-none-eabi-c++filt", "-p"], input="\n".join(names),
                             capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return names
    return out if len(out) == len(names) else names


def _sub(a: Counter, b: Counter) -> Counter:
    out = Counter(a)
    out.subtract(b)
    return Counter({k: v for k, v in out.items() if v})


def _regs(ops: str) -> int:
    m = re.search(r"\{([^}]*)\}", ops)
    if not m:
        return 1
    n = 0
    for part in m.group(1).split(","):
        part = part.strip()
        if "-" in part:
            a, b = (re.sub(r"\D", "", x) for x in part.split("-"))
            n += int(b) - int(a) + 1 if a and b else 1
        elif part:
            n += 1
    return n


def classify(mnemonic: str, ops: str) -> str:
    """The timing class of one disassembled instruction (``undecoded``: QEMU's disassembler did not
    know it, e.g. MVE and low-overhead-loop instructions of Armv8.1-M)."""
    m = mnemonic.lower().split(".")[0]
    if m in ("", ".byte", ".short", ".word", ".inst") or mnemonic.startswith("."):
        return "undecoded"
    if m.startswith("v") and re.search(r"\bq\d+\b", ops):
        return "vector"
    if m in ("sdiv", "udiv"):
        return "div"
    if m in ("vdiv", "vsqrt"):
        return "fdiv"
    if m.startswith(("ldm", "pop", "vldm", "vpop")):
        return "load_multiple"
    if m.startswith(("stm", "push", "vstm", "vpush")):
        return "store_multiple"
    if m.startswith("ldrd"):
        return "load_pair"
    if m.startswith("strd"):
        return "store_pair"
    if m.startswith(LOADS):
        return "load"
    if m.startswith(STORES):
        return "store"
    if m.startswith(("vmla", "vmls", "vfma", "vfms", "vnmla", "vnmls", "vfnm")):
        return "fmac"
    if m.startswith("v"):
        return "fp"
    if m.startswith(MULS):
        return "mul"
    base = next((m[: -len(c)] for c in CONDS if m.endswith(c) and m[: -len(c)] in BRANCHES), m)
    return "branch" if base in BRANCHES else "alu"


def _thumb_len(halfword: int) -> int:
    """Bytes of the Thumb instruction starting with ``halfword`` (0b11101/0b11110/0b11111: 32-bit)."""
    return 4 if (halfword >> 11) in (0b11101, 0b11110, 0b11111) else 2


def _block(lines: list[tuple[int, str, str, str]], symbol: str) -> Block:
    """One translated block from its disassembly lines; Thumb lengths re-derived from the bytes, so
    an instruction the disassembler split into ``.byte`` pieces counts once."""
    insns: Counter = Counter()
    regs: Counter = Counter()
    prev = ""

    def pipelined(cls: str) -> str:  # Cortex-M4 TRM 3.3.2: a load after a load takes one cycle less
        return "load_pipelined" if cls == "load" and prev == "load" else cls

    if len(lines[0][1]) == 8:  # ARM state: one 32-bit word per line
        for _, _, mn, ops in lines:
            cls = classify(mn, ops)
            insns[pipelined(cls)] += 1
            prev = cls
            if cls.endswith("_multiple"):
                regs[cls] += _regs(ops)
        return Block(lines[-1][0] + 4, insns, regs, symbol)
    half: dict[int, int] = {}
    text: dict[int, tuple[str, str, int]] = {}
    for addr, hexes, mn, ops in lines:
        words = [int(h, 16) for h in hexes.split()]
        for i, w in enumerate(words):
            half[addr + 2 * i] = w
        text[addr] = (mn, ops, 2 * len(words))
    a, end = lines[0][0], max(half) + 2
    while a < end and a in half:
        n = _thumb_len(half[a])
        mn, ops, size = text.get(a, ("", "", 0))
        cls = classify(mn, ops) if size == n else "undecoded"
        insns[pipelined(cls)] += 1
        prev = cls
        if cls.endswith("_multiple"):
            regs[cls] += _regs(ops)
        a += n
    return Block(a, insns, regs, symbol)


MAX_BLOCK_EXECUTIONS = 40_000_000  # ~3 GB of log text; a longer run is not counted this way


class TooLong(Exception):
    """The run executes more blocks than this counter reads (the log is streamed, never stored)."""


def parse(log: Path) -> Counts:
    """Executed instructions in one QEMU log file."""
    with open(log, errors="replace") as fh:
        return parse_lines(fh)


def parse_lines(fh: Iterable[str], limit: int = MAX_BLOCK_EXECUTIONS) -> Counts:
    """Executed instructions in QEMU's log lines (a block translated again at one address: the
    last wins); ``TooLong`` past ``limit`` block executions."""
    blocks: dict[int, Block] = {}
    execs: Counter = Counter()
    taken = 0
    lines: list[tuple[int, str, str, str]] = []
    symbol = "?"
    prev: Block | None = None
    n = 0
    for line in fh:
        if line.startswith("Trace"):
            m = _TRACE.match(line)
            if m:
                pc = int(m.group(1), 16)
                execs[pc] += 1
                if prev is not None and pc != prev.end:
                    taken += 1
                prev = blocks.get(pc)
                n += 1
                if n > limit:
                    raise TooLong(f"more than {limit:,} executed blocks")
            continue
        m = _INSN.match(line)
        if m:
            lines.append((int(m.group(1), 16), m.group(2), m.group(3), m.group(4)))
            continue
        if lines:  # a block ends at its first non-instruction line
            blocks[lines[0][0]] = _block(lines, symbol)
            lines = []
        if line.startswith("IN:"):
            symbol = line[3:].strip() or "?"
    if lines:
        blocks[lines[0][0]] = _block(lines, symbol)
    out = Counts(taken_branches=taken)
    for pc, n in execs.items():
        blk = blocks.get(pc)
        if blk is None:
            continue
        out.blocks += n
        out.instructions += blk.n * n
        out.by_symbol[blk.symbol] += blk.n * n
        for k, v in blk.insns.items():
            out.by_class[k] += v * n
        for k, v in blk.regs.items():
            out.regs[k] += v * n
    return out
