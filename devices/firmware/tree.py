"""Where the TFLite Micro source tree and the Arm tools come from, and what they are.

``TFLM_DIR`` names the tree (TFLite Micro + CMSIS-NN + CMSIS-Core + Cortex_DFP, as
../shared/vendor/tflite-micro/README.md describes it); by default ``../shared/vendor/tflite-micro``
beside the repository, when it exists. Nothing of the tree is copied into the repository: the
library is built from it into the build folder. Versions of the tree (its README's pins), the
compiler and QEMU go into every record, since a figure is only as good as what made it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from ground.errors import UserError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TREE = REPO.parent / "shared" / "vendor" / "tflite-micro"
GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
QEMU = "qemu-system-arm"
_NEED_DEBIAN = (
    "Install the Debian packages with `make system-deps` (gcc-arm-none-eabi, "
    "libnewlib-arm-none-eabi, qemu-system-arm), as root."
)


def tflm_dir() -> Path:
    """The TFLite Micro tree: ``$TFLM_DIR``, else ../shared/vendor/tflite-micro; a UserError if absent."""
    env = os.environ.get("TFLM_DIR")
    root = Path(env) if env else DEFAULT_TREE
    marker = root / "tensorflow" / "lite" / "micro" / "micro_interpreter.cc"
    if not marker.is_file():
        where = f"TFLM_DIR={env}" if env else f"the default {DEFAULT_TREE}"
        raise UserError(
            f"no TFLite Micro source tree at {where} (looked for {marker}). Set TFLM_DIR to a tree "
            "made by TFLM's create_tflm_tree.py with CMSIS-NN, CMSIS-Core and Cortex_DFP beside it "
            "(../shared/vendor/tflite-micro/README.md lists the pinned commits)."
        )
    return root.resolve()


def tree_pin(root: Path) -> str:
    """The tree's pins as its README states them (the table rows), else a hash of its file list."""
    readme = root / "README.md"
    if readme.is_file():
        rows = [
            ln for ln in readme.read_text().splitlines() if ln.startswith("|") and "---" not in ln
        ]
        if rows:
            return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*.c*"))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def tflm_commit(root: Path) -> str:
    """The TFLite Micro commit named in the tree's README (or 'unknown')."""
    readme = root / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    m = re.search(r"tensorflow/tflite-micro \| ([0-9a-f]{7,40})", text)
    return m.group(1) if m else "unknown"


def require_tools() -> None:
    """Refuse before any work when the cross compiler or QEMU is missing."""
    missing = [t for t in (GCC, GXX, QEMU, "arm-none-eabi-size") if shutil.which(t) is None]
    if missing:
        raise UserError(f"emulating firmware needs {', '.join(missing)} on PATH. {_NEED_DEBIAN}")


def tools_available() -> bool:
    return all(shutil.which(t) for t in (GCC, GXX, QEMU, "arm-none-eabi-size"))


@functools.cache
def gcc_version() -> str:
    out = subprocess.run([GCC, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


@functools.cache
def qemu_version() -> str:
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()
