"""The TFLite Micro library, built once per (core, kernel set) from the TFLM tree and cached.

Objects go to ``build/tflm-lib/<core>-<kernels>-<key>/obj/`` where ``key`` hashes the tree's pins,
the compiler and every flag, so a changed tree or flag builds a new library and never mixes objects.
Each source compiles to its own object (in parallel, with a progress bar); an object already there
is reused, so a build that was killed resumes, and a subset build (the framework and only the
kernels one model uses, for the test suite) shares its objects with the full build. The objects
are archived into ``libtflm.a`` (full) or ``libtflm-<ops>.a`` (subset): the linker takes only what
the firmware calls, with ``--gc-sections``, so flash does not depend on which archive it came from.

Flags follow TFLite Micro's own makefile (core -Os, kernels and CMSIS-NN -O2, ``TF_LITE_STATIC_MEMORY``,
no RTTI or exceptions) and ../shared/vendor/tflite-micro/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ground import rundir
from ground.errors import UserError

from . import tree
from .cores import Core

CACHE = tree.REPO / "build" / "tflm-lib"
# test-only sources of the tree: never linked into a firmware
SKIP = {
    "tensorflow/lite/micro/test_helpers.cc",
    "tensorflow/lite/micro/test_helper_custom_ops.cc",
    "tensorflow/lite/micro/mock_micro_graph.cc",
    "tensorflow/lite/micro/fake_micro_context.cc",
    "tensorflow/lite/micro/kernels/kernel_runner.cc",
    "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",  # reads DWT; the firmware has its own
}
CXXFLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
CXXFLAGS += ("-fno-unwind-tables", "-fno-use-cxa-atexit")
COMMON = ("-ffunction-sections", "-fdata-sections", "-fmessage-length=0", "-Wno-psabi")
DEFINES = ("TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON", "TF_LITE_MCU_DEBUG_LOG")


@dataclass
class Library:
    """A built archive and what made it."""

    archive: Path
    folder: Path
    core: str
    kernels: str
    key: str
    sources: int
    compiled: int  # objects compiled by this call (0: all cached)
    seconds: float  # wall time of this call
    flags: list[str]

    def record(self) -> dict:
        return {
            "archive": str(self.archive),
            "core": self.core,
            "kernels": self.kernels,
            "key": self.key,
            "sources": self.sources,
            "compiled_now": self.compiled,
            "build_s": round(self.seconds, 1),
        }


def includes(root: Path, core: Core) -> list[str]:
    inc = [
        root,
        root / "third_party/flatbuffers/include",
        root / "third_party/gemmlowp",
        root / "third_party/ruy",
    ]
    if core.kernels == "cmsis_nn":
        inc += [root / "third_party/cmsis_nn", root / "third_party/cmsis_nn/Include"]
    if core.dfp:
        inc += [
            root / "third_party/cmsis/CMSIS/Core/Include",
            root / f"third_party/cmsis_dfp/Device/{core.dfp}/Include",
        ]
    return [f"-I{p}" for p in inc]


def flags(root: Path, core: Core) -> list[str]:
    """Flags shared by every object of this core's library (and the firmware's own sources)."""
    defs = list(DEFINES) + list(core.defines)
    if core.kernels == "cmsis_nn":
        defs += ["CMSIS_NN"]
    return [*core.cflags, *COMMON, *[f"-D{d}" for d in defs], *includes(root, core)]


def sources(root: Path, core: Core) -> list[str]:
    """Every library source for this core's kernel set, relative to the tree."""
    other = "reference" if core.kernels == "cmsis_nn" else "cmsis_nn"
    out = []
    for p in sorted((root / "tensorflow").rglob("*.cc")):
        rel = p.relative_to(root).as_posix()
        if rel in SKIP or f"/kernels/{other}/" in rel or rel.endswith("_test.cc"):
            continue
        out.append(rel)
    if core.kernels == "cmsis_nn":
        out += sorted(
            p.relative_to(root).as_posix()
            for p in (root / "third_party/cmsis_nn/Source").rglob("*.c")
        )
    return out


def _shadowed(root: Path, core: Core) -> set[str]:
    """Generic kernels replaced by the kernel set's own versions (kernels/<set>/x.cc over kernels/x.cc)."""
    kdir = root / "tensorflow/lite/micro/kernels"
    return {f"tensorflow/lite/micro/kernels/{p.name}" for p in (kdir / core.kernels).glob("*.cc")}


def library_sources(root: Path, core: Core) -> list[str]:
    shadow = _shadowed(root, core)
    return [s for s in sources(root, core) if s not in shadow]


def key(root: Path, core: Core) -> str:
    blob = json.dumps([tree.tree_pin(root), tree.gcc_version(), flags(root, core), CXXFLAGS])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def folder(root: Path, core: Core) -> Path:
    return CACHE / f"{core.key}-{key(root, core)}"


def _opt(rel: str) -> str:
    return "-O2" if ("/kernels/" in rel or rel.startswith("third_party/")) else "-Os"


def _compile(root: Path, core: Core, rel: str, obj: Path, base: list[str]) -> str | None:
    """Compile one source to ``obj`` (written under a temp name, then renamed); the error or None."""
    cxx = rel.endswith(".cc")
    cmd = [tree.GXX if cxx else tree.GCC, "-c", _opt(rel), *base]
    cmd += list(CXXFLAGS) if cxx else ["-std=c11"]
    tmp = obj.with_suffix(f".tmp{os.getpid()}")
    proc = subprocess.run([*cmd, str(root / rel), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        return f"{rel}: {proc.stderr.strip()[-1500:]}"
    os.replace(tmp, obj)
    return None


def _progress(total: int, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
    except ImportError:  # pragma: no cover
        return None


def build(core: Core, subset: list[str] | None = None, jobs: int | None = None) -> Library:
    """Build (or reuse) the library for ``core``; ``subset``: only these sources (see kernel_sources)."""
    tree.require_tools()
    root = tree.tflm_dir()
    out = folder(root, core)
    objdir = out / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    want = library_sources(root, core) if subset is None else subset
    base = flags(root, core)
    objs = [objdir / (rel.replace("/", "__") + ".o") for rel in want]
    todo = [(rel, o) for rel, o in zip(want, objs) if not o.is_file()]
    t0 = time.monotonic()
    jobs = jobs or int(os.environ.get("TINYSHIP_JOBS", "0")) or os.cpu_count() or 1
    errors: list[str] = []
    if todo:
        bar = _progress(len(todo), f"TFLM {core.key}")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for err in pool.map(lambda t: _compile(root, core, t[0], t[1], base), todo):
                if err:
                    errors.append(err)
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    if errors:
        raise UserError(
            f"{len(errors)} TFLite Micro source(s) failed to compile for {core.name} with "
            f"{tree.gcc_version()}; first: {errors[0]}. Check TFLM_DIR ({root})."
        )
    name = "libtflm.a" if subset is None else f"libtflm-{_digest(want)}.a"
    archive = out / name
    if todo or not archive.is_file():
        _archive(archive, objs)
    secs = time.monotonic() - t0
    if subset is None:
        meta = {"core": core.name, "kernels": core.kernels, "tree": str(root),
                "tree_pin": tree.tree_pin(root), "gcc": tree.gcc_version(),
                "flags": base, "cxxflags": list(CXXFLAGS), "sources": len(want)}  # fmt: skip
        rundir.atomic_write_json(out / "library.json", meta)
    return Library(
        archive, out, core.name, core.kernels, out.name, len(want), len(todo), secs, base
    )


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:10]


def _archive(archive: Path, objs: list[Path]) -> None:
    tmp = archive.with_suffix(f".tmp{os.getpid()}.a")
    tmp.unlink(missing_ok=True)
    subprocess.run(["arm-none-eabi-ar", "rcs", str(tmp), *map(str, objs)], check=True)
    os.replace(tmp, archive)
