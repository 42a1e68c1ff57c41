"""The profile stage's records: what the user asks for (Target, Settings), what each step passes
on (Plan, Measured, Estimator), each verdict (Record) and what :func:`devices.profile` returns.

Kept apart from the steps so that every step module, and a test, can build them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground.errors import UserError

from . import estimate as _estimate
from .catalog import Catalog, Device
from .runners import Measurement

HOST = "host"


@dataclass
class Record:
    """One artifact judged on one device: how its latency, RAM and flash were found, and the verdict."""

    artifact: str
    format: str
    precision: str
    device: str
    device_class: str
    method: str  # measured | emulated | estimated | none
    latency_ms: float | None
    latency: dict[str, Any] | None
    ram_bytes: int | None
    ram_method: str
    flash_bytes: int | None
    flash_method: str
    budget: dict[str, float]
    verdict: str
    reasons: list[str] = field(default_factory=list)
    # an audio front-end's working memory, counted in ram_bytes on MCU/PDA classes (devices/frontend.py)
    ram_frontend: dict[str, Any] | None = None
    # the firmware built and run in QEMU for this file and device (devices/firmware/), or why not
    emulated: dict[str, Any] | None = None
    # the latency's error band {low_ms, high_ms, ratio_low, ratio_high, source, n, note}
    # (devices/latency_bands.py); None only where latency_ms is None
    latency_band: dict[str, Any] | None = None
    # the recipe's devices.allow_within_error when judged: a 'fits within error' passes check then
    within_error_allowed: bool = False

    @property
    def passes(self) -> bool:
        """Fits its budget: outright, or within error where the recipe allows that (ships, checks)."""
        return self.verdict == "fits" or (
            self.verdict == "fits within error" and self.within_error_allowed
        )


@dataclass
class ProfileReport:
    run: str
    records: list[Record]
    analyses: dict[str, dict]
    estimator: dict[str, Any]
    devices: list[dict]
    path: Path
    ship: list[str]
    not_checked: list[str]


@dataclass(frozen=True)
class Target:
    """A reachable machine to measure on: a registered runner, its address and its own options.

    ``options`` are the runner's keyword arguments beyond the shared settings, e.g.
    ``{"ssh_config": ..., "remote_python": ...}`` for ssh or ``{"benchmark_model": ...}`` for adb.
    """

    runner: str
    address: str = HOST
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> str:
        """The device name in profile.json: ``host`` or ``<runner>:<address>``."""
        return self.address if self.runner == HOST else f"{self.runner}:{self.address}"


@dataclass(frozen=True)
class Settings:
    """How each measurement runs; None takes the recipe's ``devices`` section."""

    threads: int | None = None
    runs: int | None = None
    warmup: int | None = None
    pin_core: int | None = None


def ssh_targets(
    hosts: list[str] | None,
    ssh_config: str | None = None,
    ssh_options: list[str] | None = None,
    remote_python: str = "python3",
) -> list[Target]:
    """Targets for ``--ssh user@host`` (the user's own ssh config, keys and known_hosts)."""
    opts = {"ssh_config": ssh_config, "ssh_options": ssh_options, "remote_python": remote_python}
    return [Target("ssh", h, dict(opts)) for h in hosts or []]


def adb_targets(serials: list[str] | None, benchmark_model: str | None) -> list[Target]:
    """Targets for ``--adb SERIAL``: TFLite's benchmark_model binary is required."""
    if serials and not benchmark_model:
        raise UserError(
            "--adb needs --benchmark-model PATH (TFLite's benchmark_model binary for the phone)."
        )
    return [Target("adb", s, {"benchmark_model": benchmark_model}) for s in serials or []]


# ---------------------------------------------------------------- step records


@dataclass
class Plan:
    """What the run directory and the user ask for: artifacts, devices, targets, settings, budgets."""

    run_dir: Path
    card: dict
    exports: dict
    artifacts: list[tuple[dict, Path]]
    catalog: Catalog
    devices: list[Device]  # catalog devices judged (host first)
    targets: list[Target]  # machines measured (host first)
    settings: dict[str, Any]  # threads, runs, warmup, pin_core
    budgets: dict[str, dict[str, float]]  # per device name, over the catalog's
    stack: str = ""  # the MCU inference stack every MCU estimate models (catalog 'stacks:')
    frontend_mode: str = "window"  # how an audio front-end is costed (devices/frontend.py MODES)
    emulate: bool = (
        False  # build firmware for MCU/PDA devices and run it in QEMU (devices/firmware/)
    )


@dataclass
class Measured:
    """One measurement of one artifact on one target."""

    artifact: str
    device: str
    measurement: Measurement | None
    refused: str | None = (
        None  # the target's runtime could not run the file (a verdict, not a crash)
    )


@dataclass
class Estimator:
    """The latency cost model fitted on the host measurements, with its leave-one-out error."""

    fitted: _estimate.Fit | None
    loo: Any
    record: dict[str, Any]
