"""The devices stage as named steps: plan -> analyse -> measure -> estimate -> verdicts -> report -> ship.

Each step is a function returning a record, testable alone; :func:`profile` runs them in order.
The steps live in their own modules (planning, measuring, judging, outputs; the CI gate in
gate) and are re-exported here, so ``devices.profile.plan`` and the rest keep working.

Writes ``profile/`` (profile.json, report.md, report.html, plots) and ``ship/`` (the
artifacts that passed export's gate and fit at least one device, with manifest.json),
committed together through ``ground.rundir.staged_dirs`` so a failure or a kill leaves
the previous results intact. Before any work, every artifact is checked against
exports.json (inside ``export/``, no symlink, same sha256) and exports.json against the card.
"""

from __future__ import annotations

from pathlib import Path

from ground import rundir, shipseal

from .gate import check
from .judging import MICRO_CLASSES, facts, file_reason, runnable_reason, verdicts
from .measuring import analyse, emulate, estimate, measure
from .outputs import not_checked, report, ship
from .planning import plan
from .records import (
    HOST,
    Estimator,
    Measured,
    Plan,
    ProfileReport,
    Record,
    Settings,
    Target,
    adb_targets,
    ssh_targets,
)

__all__ = [
    "HOST",
    "MICRO_CLASSES",
    "Estimator",
    "Measured",
    "Plan",
    "ProfileReport",
    "Record",
    "Settings",
    "Target",
    "adb_targets",
    "analyse",
    "check",
    "emulate",
    "estimate",
    "facts",
    "file_reason",
    "measure",
    "not_checked",
    "plan",
    "profile",
    "report",
    "runnable_reason",
    "ship",
    "ssh_targets",
    "verdicts",
]


@rundir.writes("run_dir")  # one writer: a second profile is refused before measuring anything
def profile(
    run_dir: str | Path,
    devices: list[str] | None = None,
    *,
    targets: list[Target] | None = None,
    settings: Settings | None = None,
    catalog: str | None = None,
    budgets: dict[str, dict[str, float]] | None = None,
    force: bool = False,
    stack: str | None = None,
    emulate: bool = False,
) -> ProfileReport:
    """Profile every artifact of ``run_dir/export`` on the selected devices; write profile/ and ship/.

    ``devices``: catalog names (default: the recipe's ``devices.targets``); ``targets``:
    machines to measure on besides the host (:func:`ssh_targets`, :func:`adb_targets`);
    ``stack``: the MCU inference stack the MCU estimates model (default: the catalog's default);
    ``emulate``: build each MCU/PDA file into firmware and run it in QEMU (devices/firmware/): its
    flash, RAM and cycle-model latency replace the estimates where it builds.
    """
    p = plan(
        Path(run_dir),
        devices,
        targets or [],
        settings or Settings(),
        catalog,
        budgets,
        force,
        stack,
    )
    p.emulate = emulate
    analyses = analyse(p)
    measured = measure(p)
    emulated = _emulate_step(p, analyses)
    est = estimate(p, analyses, measured)
    records = verdicts(p, analyses, measured, est, emulated)
    with rundir.staged_dirs(p.run_dir, ("profile", "ship"), force=force) as out:
        doc = report(p, analyses, est, records, out["profile"])
        passing = ship(p, records, out["ship"], doc)  # profile/ and ship/ are committed together
        shipseal.write(out["ship"], out["profile"] / "profile.json")  # what readers verify
    return ProfileReport(
        doc["run"], records, doc["artifacts"], est.record, doc["devices"],
        p.run_dir / rundir.PROFILE, passing, doc["not_checked"],
    )  # fmt: skip


def _emulate_step(p: Plan, analyses: dict) -> dict:
    return emulate(p, analyses)
