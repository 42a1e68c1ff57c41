"""The ``tinyship`` argument parser: every subcommand, its flags and their help texts.

Kept apart from the subcommands' code so the flags can be read (and tested) as one table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import __version__

PROG = "tinyship"


WRITERS = ("run", "distill", "export", "profile")  # the subcommands that take --force and --out


def _common(p: argparse.ArgumentParser, name: str, run_required: bool = True) -> None:
    """The flags of every subcommand: --run (not on catalog), --force and its --out alias only
    where the subcommand writes into the run directory, --quiet, --json, --version, --debug."""
    g = p.add_argument_group("flags every tinyship subcommand takes")
    writes = name in WRITERS
    if name != "catalog":
        g.add_argument(
            *(("--run", "--out") if writes else ("--run",)),
            dest="run",
            required=run_required,
            type=Path,
            metavar="DIR",
            help="run directory, e.g. build/demo (stages read and write student/ export/ profile/ "
            "ship/ logs/ inside it)" + ("; --out is the same flag" if writes else ""),
        )
    if writes:
        g.add_argument(
            "--force",
            action="store_true",
            help="replace what this subcommand writes if it exists (the old one is kept until the "
            "new one is complete)",
        )
    g.add_argument(
        "--quiet",
        action="store_true",
        help="no progress and no tables: errors and results only",
    )
    g.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (progress and messages go to stderr)",
    )
    g.add_argument("--version", action="version", version=f"tinyship {__version__}")
    g.add_argument(
        "--debug", action="store_true", help="print the Python traceback when something fails"
    )


def _wide_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wide",
        action="store_true",
        help="print every table column unwrapped, however wide (default: fit the terminal, or "
        "120 characters when stdout is not a terminal)",
    )


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _distill_flags(p: argparse.ArgumentParser, recipe_required: bool) -> None:
    p.add_argument(
        "--recipe",
        required=recipe_required,
        help="YAML recipe with sections data, teacher, transfer, student, train, export, devices",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue training from the last checkpoint in <run>/.work (same recipe and seed)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the recipe's train.seed")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's train.epochs")
    p.add_argument(
        "--trust-pickles",
        action="store_true",
        help="allow teacher members stored as pickles; only for files you made yourself",
    )


def _export_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--formats",
        type=_names,
        default=None,
        help="comma list, e.g. onnx,tflite,coreml (default: the recipe's, or all)",
    )
    p.add_argument(
        "--precisions",
        type=_names,
        default=None,
        help="comma list, e.g. fp32,int8,int8-full (default: the recipe's, or every precision of each format)",
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="write exports.json even when a file fails its parity gate (recorded as passed: false)",
    )


def _budget_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="DEVICE:KEY=V,...",
        help="override a device budget, e.g. cortex-m4f-stm32l4r5:latency_ms=20,ram_kb=64,flash_kb=256 (kB = KiB)",
    )


def _profile_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--devices",
        type=_names,
        default=None,
        help="comma list of catalog names (default: the recipe's targets, or the whole catalog)",
    )
    p.add_argument(
        "--ssh",
        action="append",
        default=[],
        metavar="USER@HOST",
        help="also measure on a Linux board over your own ssh (repeatable)",
    )
    p.add_argument(
        "--ssh-config", default=None, help="ssh -F config file (default: your own ~/.ssh/config)"
    )
    p.add_argument(
        "--ssh-option", action="append", default=[], help="extra ssh -o option, e.g. Port=2222"
    )
    p.add_argument(
        "--remote-python",
        default="python3",
        help="python on the board (needs numpy and onnxruntime or ai-edge-litert)",
    )
    p.add_argument(
        "--adb",
        action="append",
        default=[],
        metavar="SERIAL",
        help="also measure on an Android phone over adb (repeatable)",
    )
    p.add_argument(
        "--benchmark-model", default=None, help="TFLite benchmark_model binary to push to the phone"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="threads for measured runs (default: recipe's)"
    )
    p.add_argument("--runs", type=int, default=None, help="timed runs per file (default: recipe's)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed runs before timing (default: recipe's)"
    )
    p.add_argument("--pin-core", type=int, default=None, help="pin measured runs to this CPU core")
    p.add_argument(
        "--catalog", default=None, help="extra catalog YAML that adds or replaces devices"
    )
    p.add_argument(
        "--stack",
        default=None,
        help="MCU inference stack the estimates model (catalog 'stacks:'; default: the recipe's "
        "devices.stack, else tflm-cmsis-nn)",
    )
    p.add_argument(
        "--emulate",
        action="store_true",
        help="build each int8 .tflite into TFLite Micro firmware for the MCU/PDA devices and run it in "
        "QEMU: emulated flash, RAM, instructions and cycle-model latency (needs make system-deps)",
    )
    _budget_flag(p)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Distil a cumbersome model into a small student, export it to ONNX, TFLite and "
        "Core ML, and prove it fits each device. Run 'tinyship SUBCOMMAND --help' for its flags.",
        epilog="example: tinyship run --recipe recipes/demo.yaml --run build/demo --force",
    )
    top.add_argument("--version", action="version", version=f"tinyship {__version__}")
    sub = top.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND")

    def add(name: str, helptext: str, run_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext)
        _common(p, name, run_required)
        return p

    p = add("run", "every stage from a recipe: distill, export, profile, then summary and check")
    _distill_flags(p, recipe_required=True)
    _export_flags(p)
    _profile_flags(p)
    _wide_flag(p)
    p = add("distill", "train the student from the recipe's teacher; writes <run>/student/")
    _distill_flags(p, recipe_required=True)
    p = add("export", "export <run>/student to ONNX, TFLite and Core ML; writes <run>/export/")
    p.add_argument(
        "--recipe", default=None, help="read the export section from this recipe, not the card's"
    )
    _export_flags(p)
    p = add(
        "profile",
        "size, RAM and latency of every exported file on every device; writes <run>/profile/ and <run>/ship/",
        run_required=False,
    )
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="profile these model files (.onnx, .tflite) instead of a run's exports; "
        "the run directory is built in --run (default build/profile)",
    )
    _profile_flags(p)
    p = add("check", "exit 1 when a device has no file within its budget (a CI gate)")
    _budget_flag(p)
    p.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="FILE",
        help="require this file to fit every checked device (repeatable)",
    )
    p = add(
        "summary", "accuracies, files and the recommended file per device, from the run directory"
    )
    _wide_flag(p)
    p = add("catalog", "print the device catalog with the source of every figure", False)
    p.add_argument(
        "--catalog", default=None, help="extra catalog YAML that adds or replaces devices"
    )
    add(
        "report",
        "rebuild profile/report.html, report.md and ship/MODEL_CARD.md from profile.json (always "
        "rebuilt: they are derived from the run's records)",
    )
    return top
