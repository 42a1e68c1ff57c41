"""Where the TFLite Micro source tree and the Arm tools come from, and what they are.

``TFLM_DIR`` names the tree (TFLite Micro + CMSIS-NN + CMSIS-Core + Cortex_DFP, as
../shared/vendor/tflite-micro/README.md describes it); by default ``../shared/vendor/tflite-micro``
beside the repository, when it exists, else ``build/tflm-src/tree`` that ``make tflm-source``
makes from the pinned commits (``devices/firmware/pins.py``). Nothing of the tree is copied into
the repository: the library is built from it into the build folder. Versions of the tree (its
README's pins), the compiler and QEMU go into every record, since a figure is only as good as
what made it.
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

from . import pins

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TREE = REPO.parent / "shared" / "vendor" / "tflite-micro"
SOURCE_TREE = pins.SOURCE_DIR / pins.TREE_NAME  # made by `make tflm-source`
MARKER = Path("tensorflow") / "lite" / "micro" / "micro_interpreter.cc"
GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
QEMU = "qemu-system-arm"
_NEED_DEBIAN = (
    "Install the Debian packages with `make system-deps` (gcc-arm-none-eabi, "
    "libnewlib-arm-none-eabi, qemu-system-arm), as root."
)


def _has_tree(root: Path) -> bool:
    return (root / MARKER).is_file()


def tflm_dir() -> Path:
    """The TFLite Micro tree: ``$TFLM_DIR``; unset, ../shared/vendor/tflite-micro when it exists,
    else build/tflm-src/tree (``make tflm-source``); a UserError naming both ways when none is."""
    return find_tree(os.environ.get("TFLM_DIR"), (DEFAULT_TREE, SOURCE_TREE))


def find_tree(env: str | None, defaults: tuple[Path, ...]) -> Path:
    """``env`` (the TFLM_DIR setting) when given, else the first of ``defaults`` holding a tree."""
    if env:
        root = Path(env)
        if not _has_tree(root):
            raise UserError(
                f"no TFLite Micro source tree at TFLM_DIR={env} (looked for {root / MARKER}). Set "
                "TFLM_DIR to a tree made by TFLM's create_tflm_tree.py with CMSIS-NN, CMSIS-Core "
                "and Cortex_DFP beside it, or unset it and run `make tflm-source` (clones the "
                f"pinned commits of devices/firmware/pins.py into {pins.SOURCE_DIR})."
            )
        return root.resolve()
    for root in defaults:
        if _has_tree(root):
            return root.resolve()
    raise UserError(
        f"no TFLite Micro source tree: TFLM_DIR is not set, and none of {', '.join(map(str, defaults))} "
        "holds one. Set TFLM_DIR=/path/to/tree (an environment variable, or "
        "`make ... TFLM_DIR=...`), or run `make tflm-source` on a machine with network access "
        "(it clones the pinned TFLite Micro, CMSIS-NN, CMSIS-Core and Cortex_DFP commits and "
        f"generates the tree in {SOURCE_TREE})."
    )


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
