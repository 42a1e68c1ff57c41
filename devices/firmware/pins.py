"""The pinned sources of the TFLite Micro tree, and how to make the tree from them (``make tflm-source``).

The pins are those of ../shared/vendor/tflite-micro/README.md (read 2026-12-06), the tree the
firmware figures were made with; they live here only. A machine without that tree but with
network access runs ``make tflm-source``: each repository cloned at its pin into build/tflm-src/,
then TFLM's own generator (``create_tflm_tree.py``, the flags the README names) writes the tree to
build/tflm-src/tree with the CMSIS-Core headers and the Cortex_DFP device files beside it, and a
README.md holding the same pin table (``devices.firmware.tree`` reads the pins from it).
``--dry-run`` prints the exact commands and runs none.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO / "build" / "tflm-src"  # where `make tflm-source` clones and generates
TREE_NAME = "tree"  # the generated tree: build/tflm-src/tree
MAKEFILE_OPTIONS = "TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn"
# the DFP devices of the cores devices/firmware/cores.py builds
DFP_DEVICES = ("ARMCM4", "ARMCM7", "ARMCM33", "ARMCM55")


@dataclass(frozen=True)
class Pin:
    """One repository at one commit, as the vendored tree's README names it."""

    part: str  # the README's words for it
    repo: str  # owner/name on GitHub
    commit: str
    folder: str  # its clone under build/tflm-src/
    note: str = ""

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}.git"


PINS = (
    Pin("TensorFlow Lite Micro (`tensorflow/`, `signal/`)", "tensorflow/tflite-micro",
        "90b983c2b3f1", "tflite-micro", "2026-08-20"),
    Pin("CMSIS-NN (optimized int8/int16 kernels)", "ARM-software/CMSIS-NN", "4ab83cc3cc98",
        "cmsis_nn", "TFLM's pin"),
    Pin("CMSIS 6 Core headers", "ARM-software/CMSIS_6", "5782d6f8", "cmsis", "TFLM's pin"),
    Pin("Device startup, system and GCC linker scripts for ARMCM4/7/33/55", "ARM-software/Cortex_DFP",
        "c2c70a97", "cmsis_dfp", "TFLM's pin"),
)  # fmt: skip


def clone_commands(dest: Path) -> list[list[str]]:
    """git commands that put each pinned repository at its commit under ``dest`` (a blobless
    clone has every commit, so an abbreviated pin resolves)."""
    cmds = []
    for pin in PINS:
        where = str(dest / pin.folder)
        cmds.append(["git", "clone", "--filter=blob:none", "--no-checkout", pin.url, where])
        cmds.append(["git", "-C", where, "checkout", "--detach", pin.commit])
    return cmds


def generate_command(dest: Path) -> tuple[list[str], Path]:
    """TFLM's own generator and the folder it runs in (the TFLM clone), with CMSIS and CMSIS-NN
    taken from the pinned clones (its other third-party parts, flatbuffers, gemmlowp, kissfft
    and ruy, are downloaded at TFLM's pins by its make scripts)."""
    options = f"{MAKEFILE_OPTIONS} CMSIS_PATH={dest / 'cmsis'} CMSIS_NN_PATH={dest / 'cmsis_nn'}"
    script = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"
    argv = [sys.executable, script, f"--makefile_options={options}", str(dest / TREE_NAME)]
    return argv, dest / "tflite-micro"


def copy_commands(dest: Path) -> list[list[str]]:
    """What the generator leaves out and the firmware needs: TFLM's signal/ library, the full
    CMSIS-Core include folder and the DFP device files of the four cores."""
    tree = dest / TREE_NAME
    cmsis, dfp = tree / "third_party" / "cmsis", tree / "third_party" / "cmsis_dfp"
    cmds = [
        ["cp", "-rn", str(dest / "tflite-micro" / "signal"), str(tree)],
        ["mkdir", "-p", str(cmsis / "CMSIS" / "Core"), str(dfp / "Device")],
        ["cp", "-r", str(dest / "cmsis" / "CMSIS" / "Core" / "Include"), str(cmsis / "CMSIS" / "Core")],
        ["cp", str(dest / "cmsis" / "LICENSE"), str(cmsis)],
        ["cp", str(dest / "cmsis_dfp" / "LICENSE"), str(dest / "cmsis_dfp" / "README.md"), str(dfp)],
    ]  # fmt: skip
    for d in DFP_DEVICES:
        cmds.append(["cp", "-r", str(dest / "cmsis_dfp" / "Device" / d), str(dfp / "Device")])
    return cmds


def readme_text() -> str:
    """The generated tree's README: the pin table in the vendored README's own row format."""
    rows = [f"| {p.part} | {p.repo} | {p.commit}{f' ({p.note})' if p.note else ''} |" for p in PINS]
    return (
        "# TensorFlow Lite Micro + CMSIS-NN, made by `make tflm-source` (devices/firmware/pins.py)\n\n"
        "| part | where | pinned at |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f'Generated with create_tflm_tree.py --makefile_options="{MAKEFILE_OPTIONS}".\n'
    )


def plan(dest: Path) -> list[tuple[list[str], Path | None]]:
    """Every command ``make tflm-source`` runs, in order, each with the folder it runs in."""
    return [
        *((c, None) for c in clone_commands(dest)),
        generate_command(dest),
        *((c, None) for c in copy_commands(dest)),
    ]


def shell_line(argv: list[str], cwd: Path | None) -> str:
    """The command as one line a shell runs as it is."""
    return (f"cd {shlex.quote(str(cwd))} && " if cwd else "") + shlex.join(argv)


def make_tree(dest: Path, dry_run: bool = False) -> Path:
    """Clone the pins and generate the tree under ``dest`` (made absolute: the generator runs in
    the TFLM clone); ``dry_run`` prints the commands only."""
    dest = dest.absolute()
    tree = dest / TREE_NAME
    for argv, cwd in plan(dest):
        print(shell_line(argv, cwd), flush=True)
        if not dry_run:
            subprocess.run(argv, cwd=cwd, check=True)
    print(f"# then: write {tree / 'README.md'} (the pin table)", flush=True)
    if not dry_run:
        (tree / "README.md").write_text(readme_text())
    return tree


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devices.firmware.pins", description=__doc__)
    ap.add_argument("--dest", type=Path, default=SOURCE_DIR, help="default: build/tflm-src")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    args = ap.parse_args(argv)
    if not args.dry_run and (args.dest / TREE_NAME).exists():
        print(f"error: {args.dest / TREE_NAME} already exists; remove it to make it again",
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.dry_run:
        args.dest.mkdir(parents=True, exist_ok=True)
    try:
        tree = make_tree(args.dest, args.dry_run)
    except subprocess.CalledProcessError as exc:
        print(f"error: {shlex.join(exc.cmd)} failed (exit {exc.returncode}); it needs network "
              "access to github.com", file=sys.stderr)  # fmt: skip
        return 2
    if not args.dry_run:
        print(f"TFLite Micro tree ready: {tree} (found there when TFLM_DIR is unset and "
              "../shared/vendor/tflite-micro is absent)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
