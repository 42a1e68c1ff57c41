"""TFLite Micro built for this machine (x86-64 / aarch64 Linux) from the vendored tree, so a test
can compile and run the ship/examples/tflm/main.cc tinyship writes, as a firmware author would.

Reference kernels only (``kernels/*.cc`` plus ``kernels/reference/``; CMSIS-NN is Arm-only), the
framework, and the kernels of the ops the model uses (a kernel file registering another op is
left out). ``DebugLog`` and ``micro_time`` come from here, as every TFLM port brings its own.
Objects are cached in ``build/tflm-host/<key>/`` (key: the tree's pin, the compiler and the
flags), so only the first build takes minutes; a killed build resumes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TREE = REPO.parent / "shared" / "vendor" / "tflite-micro"
CACHE = REPO / "build" / "tflm-host"
FLAGS = [
    "-std=c++17", "-O1", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
    "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-w",
]  # fmt: skip
_REG = re.compile(r"TFLMRegistration\s+Register_(\w+)\s*\(")

PORT = """// tinyship's host port of the two functions every TFLite Micro port provides
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_time.h"
extern "C" void DebugLog(const char* format, va_list args) { vfprintf(stderr, format, args); }
#ifndef TF_LITE_STRIP_ERROR_STRINGS
extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format, va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}
#endif
namespace tflite {
uint32_t ticks_per_second() { return CLOCKS_PER_SEC; }
uint32_t GetCurrentTimeTicks() { return static_cast<uint32_t>(clock()); }
}  // namespace tflite
"""


def available() -> str | None:
    """Why a host build cannot be made here, or None."""
    if not (TREE / "tensorflow" / "lite" / "micro").is_dir():
        return f"the TFLite Micro tree is not at {TREE}"
    if not shutil.which("g++"):
        return "g++ not found"
    return None


def includes() -> list[str]:
    dirs = [
        TREE, TREE / "third_party/flatbuffers/include", TREE / "third_party/gemmlowp",
        TREE / "third_party/ruy", TREE / "third_party/kissfft",
    ]  # fmt: skip
    return [f"-I{d}" for d in dirs]


def sources(ops: list[str]) -> list[Path]:
    """The framework plus the kernels that register ``ops`` (BuiltinOperator names, e.g. CONV_2D)."""
    micro = TREE / "tensorflow" / "lite" / "micro"
    skip = {"test_helpers.cc", "test_helper_custom_ops.cc", "mock_micro_graph.cc",
            "fake_micro_context.cc", "kernel_runner.cc", "debug_log.cc", "micro_time.cc"}  # fmt: skip
    out = []
    for p in sorted((TREE / "tensorflow").rglob("*.cc")):
        rel = p.relative_to(TREE).as_posix()
        if (
            p.name in skip
            or "/cmsis_nn/" in rel
            or "/cortex_m_generic/" in rel
            or "_test" in p.name
        ):
            continue
        if p.parent in (micro / "kernels", micro / "kernels" / "reference"):
            regs = _REG.findall(p.read_text(errors="replace"))
            if regs and not any(r in ops or r.startswith(tuple(ops)) for r in regs):
                continue  # another op's kernel: not linked, not compiled
        out.append(p)
    return out


def _key() -> str:
    cc = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    pin = (TREE / "README.md").read_text()[:2000]
    return hashlib.sha256("\n".join([cc, pin, *FLAGS]).encode()).hexdigest()[:16]


def build(ops: list[str], jobs: int = 2) -> Path:
    """Compile (or reuse) the objects ``ops`` need; returns the folder holding them."""
    folder = CACHE / _key()
    obj_dir = folder / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    port = folder / "tinyship_port.cc"
    if not port.is_file():
        port.write_text(PORT)

    def one(src: Path) -> Path:
        rel = src.relative_to(TREE).as_posix() if src.is_relative_to(TREE) else src.name
        obj = obj_dir / (rel.replace("/", "__") + ".o")
        if not obj.is_file():
            tmp = obj.with_suffix(f".{os.getpid()}.tmp")
            subprocess.run(["g++", *FLAGS, *includes(), "-c", str(src), "-o", str(tmp)],
                           check=True, capture_output=True, text=True)  # fmt: skip
            tmp.replace(obj)
        return obj

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, [*sources(ops), port]))
    return obj_dir


def link(main_cc: Path, c_files: list[Path], ops: list[str], out: Path) -> Path:
    """Compile the example's main.cc and the model's C files and link them with TFLM."""
    obj_dir = build(ops)
    objs = []
    for c in c_files:
        o = out.parent / (c.name + ".o")
        subprocess.run(["gcc", "-std=c99", "-O1", "-c", str(c), "-o", str(o)], check=True)
        objs.append(o)
    want = [
        obj_dir / (s.relative_to(TREE).as_posix().replace("/", "__") + ".o") for s in sources(ops)
    ]
    archive = (
        obj_dir.parent
        / f"libtflm-{hashlib.sha256(' '.join(sorted(ops)).encode()).hexdigest()[:10]}.a"
    )
    if not archive.is_file():  # an archive: the linker takes only the objects the program needs
        tmp = archive.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(["ar", "rcs", str(tmp), *map(str, want)], check=True)
        tmp.replace(archive)
    subprocess.run(
        ["g++", *FLAGS, *includes(), str(main_cc), *map(str, objs),
         str(obj_dir / "tinyship_port.cc.o"), str(archive), "-o", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out
