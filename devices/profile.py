"""The devices stage as named steps: plan -> analyse -> measure -> estimate -> verdicts -> report -> ship.

Each step is a function returning a record, testable alone; :func:`profile` runs them in order.

Writes ``profile/`` (profile.json, report.md, report.html, plots) and ``ship/`` (the
artifacts that passed export's gate and fit at least one device, with manifest.json),
committed together through ``ground.rundir.staged_dirs`` so a failure or a kill leaves
the previous results intact. Before any work, every artifact is checked against
exports.json (inside ``export/``, no symlink, same sha256) and exports.json against the card.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ground import rundir
from ground.errors import UserError

from . import analysis as _analysis
from . import budgets as _budgets
from . import estimate as _estimate
from . import frontend as _frontend
from . import host_calibration as _hostcal
from . import stacks as _stacks
from .catalog import Catalog, Device, load_catalog
from .runners import Measurement
from .runners import get as get_runner

HOST = "host"


@dataclass
class Record:
    """One artifact judged on one device: how its latency, RAM and flash were found, and the verdict."""

    artifact: str
    format: str
    precision: str
    device: str
    device_class: str
    method: str  # measured | estimated | none
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


# ---------------------------------------------------------------- steps


def plan(
    run_dir: Path,
    devices: list[str] | None,
    targets: list[Target],
    settings: Settings,
    catalog: str | None,
    budgets: dict[str, dict[str, float]] | None,
    force: bool,
    stack: str | None = None,
) -> Plan:
    """Read card and exports, refuse to overwrite, resolve devices, targets, settings, budgets."""
    card = rundir.read_json(run_dir / rundir.CARD, "student card (student/card.json)")
    exports = rundir.read_json(run_dir / rundir.EXPORTS, "exports record (export/exports.json)")
    for stage in ("profile", "ship"):
        if (run_dir / stage).exists() and not force:
            raise UserError(
                f"'{run_dir / stage}' already exists. Pass --force to replace it "
                "(the old one is kept until the new one is complete)."
            )
    section = _budgets.recipe_devices_section(card)
    resolved = {
        "threads": settings.threads or section["threads"],
        "runs": settings.runs or section["runs"],
        "warmup": section["warmup"] if settings.warmup is None else settings.warmup,
        "pin_core": settings.pin_core,
    }
    for t in targets:
        get_runner(t.runner)  # an unknown runner fails before any work
    cat: Catalog = load_catalog(catalog)
    if stack is None and section["stack"] is not None and section["stack"] not in cat.stacks:
        raise UserError(
            f"recipe key 'devices.stack' is '{section['stack']}'; known stacks: "
            f"{', '.join(cat.stacks)} (catalog 'stacks:'). Fix the recipe or pass --stack."
        )
    # the flag, else the recipe's stack, else the catalog's default; an unknown one fails here
    stack_name = cat.stack(stack or section["stack"]).name
    selected = cat.select(devices or section["targets"])
    if HOST not in [d.name for d in selected]:
        selected = [cat.get(HOST)] + selected  # the host is always measured: it calibrates
    over = {**(section["budgets"] or {}), **(budgets or {})}
    reachable = {t.device for t in targets}
    for name in over:
        if name not in cat.devices and name not in reachable and ":" not in name:
            cat.get(name)  # raises, listing the known devices
    artifacts = _checked_artifacts(run_dir, card, exports)
    if not artifacts:
        raise UserError(
            f"'{run_dir / rundir.EXPORTS}' lists no usable artifact (all failed or missing). "
            "Re-run the export stage."
        )
    for art, _ in artifacts:
        facts(art)  # an exports.json without format facts fails here, before any work
    host_target = [t for t in targets if t.runner == HOST] or [Target(HOST)]
    others = [t for t in targets if t.runner != HOST]
    return Plan(
        run_dir, card, exports, artifacts, cat, selected, host_target + others, resolved, over,
        stack_name, section["frontend"],
    )  # fmt: skip


_RERUN_EXPORT = "Re-run the export stage with --force (python -m export --run <run> --force)."


def _checked_artifacts(run_dir: Path, card: dict, exports: dict) -> list[tuple[dict, Path]]:
    """The integrity chain's devices link: exports.json was made from this card, and every
    artifact it lists is a regular file inside ``export/`` whose sha256 is the recorded one."""
    card_sha = rundir.sha256_file(run_dir / rundir.CARD)
    if exports.get("card_sha256") != card_sha:
        raise UserError(
            f"'{run_dir / rundir.EXPORTS}' was made from a student card with sha256 "
            f"{str(exports.get('card_sha256'))[:12]}…, but student/card.json is now {card_sha[:12]}… "
            f"(the student changed after export): the export is stale. {_RERUN_EXPORT}"
        )
    arts = exports.get("artifacts")
    if not isinstance(arts, list) or not all(isinstance(a, dict) for a in arts):
        raise UserError(f"'{run_dir / rundir.EXPORTS}' has no artifacts list. {_RERUN_EXPORT}")
    out = []
    for i, art in enumerate(arts):
        for key, types in (("file", str), ("format", str), ("precision", str)):
            if not isinstance(art.get(key), types):
                raise UserError(
                    f"exports.json artifacts[{i}].{key} is {art.get(key)!r}; expected a string. {_RERUN_EXPORT}"
                )
        for key in ("input", "output"):  # tensor specs: read with .get by the report and ship
            if art.get(key) is not None and not isinstance(art.get(key), dict):
                raise UserError(
                    f"exports.json artifacts[{i}].{key} is {art.get(key)!r}; expected an object "
                    f"(the tensor spec) or null. {_RERUN_EXPORT}"
                )
        if art.get("error"):
            continue
        path = rundir.inside(run_dir, "export", art["file"], f"exports.json artifacts[{i}].file")
        if not path.exists():
            continue
        for key in ("sha256",):
            if not isinstance(art.get(key), str):
                raise UserError(
                    f"exports.json artifacts[{i}].{key} is {art.get(key)!r}; expected a sha256 hex "
                    f"string. {_RERUN_EXPORT}"
                )
        arena = art.get("tflm_arena_bytes")
        if arena is not None and (
            not isinstance(arena, int) or isinstance(arena, bool) or arena < 0
        ):
            raise UserError(
                f"exports.json artifacts[{i}].tflm_arena_bytes is {arena!r}; expected a non-negative "
                f"int or null. {_RERUN_EXPORT}"
            )
        got = rundir.sha256_file(path)
        if got != art["sha256"]:
            raise UserError(
                f"'{path}' has sha256 {got[:12]}… but exports.json records {art['sha256'][:12]}…: the "
                f"file changed after export checked it. {_RERUN_EXPORT}"
            )
        out.append((art, path))
    return out


def facts(art: dict) -> tuple[str, list[str], dict[str, str]]:
    """An artifact's format facts from exports.json: runtime family, device classes it runs on,
    and why it does not run on the others (the export stage knows its formats; devices does not)."""
    fam, runs_on = art.get("runtime_family"), art.get("runs_on")
    if not isinstance(fam, str) or not isinstance(runs_on, list):
        raise UserError(
            f"exports.json artifact '{art.get('file')}' has no format facts (runtime_family, runs_on); "
            "it was written by an older export stage. Re-run the export stage with --force."
        )
    return fam, runs_on, dict(art.get("not_on") or {})


def runnable_reason(dev: Device, art: dict, a: _analysis.Analysis | None = None) -> str | None:
    """None if the artifact can run on catalog device ``dev``; else why not (devices/README.md).

    On MCU/PDA classes the file's own operators and tensor dtypes decide too (``a.tflm_refusal``,
    or TFLite Micro's refusal recorded by ``profile FILE``), whatever its precision label says.
    """
    if dev.cls in ("mcu", "pda") and a is not None and a.tflm_refusal is not None:
        return f"not runnable on TFLite Micro: {a.tflm_refusal}"
    fam, runs_on, not_on = facts(art)
    if dev.cls not in runs_on:
        return not_on.get(dev.cls) or f"{fam} does not run on {dev.cls} class devices"
    if art["format"] not in dev.formats:
        return (
            f"no {art['format']} runtime for {dev.cls} class '{dev.name}' "
            f"(runnable formats: {', '.join(dev.formats)})"
        )
    return None


MICRO_CLASSES = ("mcu", "pda")  # TFLite Micro: int8 and float kernels, no hybrid, no fp16


def file_reason(dev: Device, art: dict, a: _analysis.Analysis) -> str | None:
    """Why the file itself, from its operators and tensor types, cannot run on ``dev``; None if it can.

    Whatever the label says: an 'int8' file whose every op computes in float is not int8,
    and a hybrid file (int8 weights, float activations) is refused by TFLite Micro.
    """
    label = art["precision"]
    if not a.ops:
        return None
    dtypes = {o.dtype for o in a.ops}
    if label.startswith("int8") and not dtypes & {"int8", "hybrid"}:
        return (
            f"labelled '{label}' but every one of its {len(a.ops)} ops computes in float: the file "
            "is not int8 (re-export it; it is not shipped under an int8 name)"
        )
    if dev.cls in MICRO_CLASSES:
        hybrid = sorted({o.op for o in a.ops if o.dtype == "hybrid"})
        if hybrid:
            return (
                f"TFLite Micro has no hybrid kernels (int8 weights, float activations) and this file's "
                f"{', '.join(hybrid[:3])} ops are hybrid, whatever its label '{label}'"
            )
        fp16 = {k for k in a.weight_bytes_by_dtype if "16" in k and "int" not in k}
        if fp16:
            return f"TFLite Micro cannot dequantize {', '.join(sorted(fp16))} weights (file holds them)"
    return None


def analyse(p: Plan) -> dict[str, _analysis.Analysis]:
    """Static analysis of every artifact: params, MACs, weight bytes, arena plan."""
    out = {}
    for art, path in _progress(p.artifacts, "analyse"):
        a = _analyse_isolated(path, art.get("tflm_arena_bytes"))
        if art.get("tflm_refusal"):  # TFLite Micro itself refused the file (profile FILE ran it)
            a.tflm_refusal = art["tflm_refusal"]
        out[art["file"]] = a
    return out


def _analyse_dict(path: Path, tflm: int | None) -> dict:
    return dataclasses.asdict(_analysis.analyse(path, tflm))


def _analyse_isolated(path: Path, tflm: int | None) -> _analysis.Analysis:
    """Parse the (untrusted) model file in a child process: a parser crash is a UserError."""
    from ground import isolate

    d = isolate.in_child(_analyse_dict, path, tflm, what=f"model '{path}'")
    d["ops"] = [_analysis.OpCost(**o) for o in d.get("ops") or []]
    return _analysis.Analysis(**d)


def measure(p: Plan) -> list[Measured]:
    """Run every artifact on every target whose runner runs its runtime family (host first)."""
    out: list[Measured] = []
    host = p.catalog.get(HOST)
    with tempfile.TemporaryDirectory(prefix="tinyship-profile-") as tmpd:
        settings = {**p.settings, "input_npy": _input_npy(p.run_dir, Path(tmpd))}
        for t in p.targets:
            runner = get_runner(t.runner)
            for art, path in _progress(p.artifacts, t.device):
                if facts(art)[0] not in runner.runtimes:
                    continue
                if t.runner == HOST and runnable_reason(host, art) is not None:
                    continue
                try:
                    m = runner.run(path, t.address, t.options, settings)
                except UserError as exc:
                    if t.runner != HOST:
                        raise
                    # the host runtime refuses the file (e.g. an op it lacks): a verdict, not a crash
                    out.append(
                        Measured(
                            art["file"], t.device, None, f"the host runtime could not run it: {exc}"
                        )
                    )
                    continue
                out.append(Measured(art["file"], t.device, m))
    return out


def estimate(
    p: Plan, analyses: dict[str, _analysis.Analysis], measured: list[Measured]
) -> Estimator:
    """Fit the host cost model on the fixed calibration set (never on this run's artifacts, so a file's
    estimate does not depend on the other files); the run's host measurements are a check on it."""
    host = p.catalog.get(HOST)
    fitted, loo, cal = _hostcal.host_fit(host)
    family = {art["file"]: facts(art)[0] for art, _ in p.artifacts}
    check_rows = []
    for m in measured:
        if m.device != HOST or m.measurement is None:
            continue
        fam = family[m.artifact]
        pred = fitted.predict_s(analyses[m.artifact], host, fam)
        if pred is not None:
            meas = m.measurement.p50_ms
            check_rows.append(
                {
                    "artifact": m.artifact,
                    "runtime_family": fam,
                    "measured_ms": meas,
                    "predicted_ms": pred * 1e3,
                    "ape_pct": abs(pred * 1e3 - meas) / meas * 100,
                }
            )
    record = {
        "model": _estimate.MODEL_NAME,
        "calibrated_on": f"tinyship host calibration set ({len(cal.measured)} generated models, "
        f"devices/host_calibration.py, set v{_hostcal.SET_VERSION}), host p50s measured {cal.created}, "
        f"cached in {cal.path}",
        "params": fitted.params,
        "n_measurements": len(cal.measured),
        "loo": dataclasses.asdict(loo),
        # a fraction, for tinyship.summary
        "loo_mape": None if loo.median_ape is None else loo.median_ape / 100.0,
        "check_on_run": {
            "per_artifact": check_rows,
            "median_ape": float(np.median([r["ape_pct"] for r in check_rows]))
            if check_rows
            else None,
            "note": "this run's host measurements vs the estimate (not fitted on)",
        },
        "transfer": "non-MCU device estimate = same efficiencies and per-op overhead cycles, with the "
        "device's own MACs/cycle and clock; MCU estimates come from a named stack fitted on published "
        "runs (latency.stack)",
        "stack": p.stack,
    }
    return Estimator(fitted, loo, record)


def _judged_devices(p: Plan) -> list[tuple[str, str, Device, bool]]:
    """(name, class, device whose budget and memory model apply, in the catalog?) per judged device."""
    rows = [(d.name, d.cls, d, True) for d in p.devices]
    for t in p.targets:
        if t.runner != HOST:
            r = get_runner(t.runner)
            rows.append((t.device, r.device_class, p.catalog.get(r.reference_device), False))
    return rows


def _latency(
    art: dict,
    dev: Device,
    a: _analysis.Analysis,
    m: Measurement | None,
    est: Estimator,
    listed: bool,
    p: Plan | None = None,
) -> tuple[float | None, dict | None, str]:
    """(latency ms, how it was found, method): measured when a measurement exists, else estimated."""
    if m is not None:
        detail = dataclasses.asdict(m)
        if m.extra.get("emulated"):  # e.g. the pi-sim: qemu-user on an x86 CPU
            detail["timing"] = "emulated, not a device timing"
        return m.p50_ms, detail, "measured"
    if not listed:
        return None, None, "none"
    if dev.cls == "mcu" and p is not None:  # a named inference stack fitted on published runs
        detail = _stacks.estimate(a, dev, p.catalog, p.stack)
        ms = detail["estimate_ms"]
        return ms, detail, "estimated" if ms is not None else "none"
    if est.fitted is None:
        return None, None, "none"
    fam = facts(art)[0]
    s = est.fitted.predict_s(a, dev, fam)
    if s is None:
        why = "catalog lacks this device's clock or MACs/cycle for the model's dtype (figure 'not found')"
        return None, {"estimate_ms": None, "why": why}, "none"
    detail = {
        "estimate_ms": s * 1e3,
        "model": _estimate.MODEL_NAME,
        "stack": f"{fam} (host fit, transferred)",
        "runtime_family": fam,
        "efficiency": _estimate.efficiency_source(dev),
        "loo_median_ape_pct": est.loo.median_ape,
        "loo_n": est.loo.n,
    }
    return s * 1e3, detail, "estimated"


def verdicts(
    p: Plan, analyses: dict[str, _analysis.Analysis], measured: list[Measured], est: Estimator
) -> list[Record]:
    """Judge every artifact on every device against its budget (fits / misses / unknown / not runnable)."""
    by_key = {(m.artifact, m.device): m.measurement for m in measured if m.measurement is not None}
    refused = {(m.artifact, m.device): m.refused for m in measured if m.refused}
    records = []
    for art, _ in p.artifacts:
        a = analyses[art["file"]]
        for name, cls, dev, listed in _judged_devices(p):
            budget = {**dev.budget, **p.budgets.get(name, {})}
            why = runnable_reason(dev, art, a) if listed else _target_reason(name, art)
            why = why or refused.get((art["file"], name)) or file_reason(dev, art, a)
            ram, rm, flash, fm = _memory(dataclasses.asdict(a), dev)
            fe_card = (p.card.get("input") or {}).get("frontend")
            fe_ram = _frontend.frontend_memory(fe_card, p.frontend_mode)
            ram, rm, counted = _with_frontend(ram, rm, fe_ram, dev)
            lat, detail, method = None, None, "none"
            if why is None:
                m = by_key.get((art["file"], name))
                lat, detail, method = _latency(art, dev, a, m, est, listed, p)
                fe = _frontend.frontend_estimate(fe_card, dev, p.frontend_mode)
                if fe is not None:  # an audio front-end runs before every inference window
                    detail = {**(detail or {}), "network_ms": lat, "frontend": fe}
                    if lat is not None and fe["ms"] is not None:
                        lat += fe["ms"]  # the verdict is for the whole window: features + network
            emulated = bool(detail and str(detail.get("timing", "")).startswith("emulated"))
            v, reasons = _budgets.verdict(None if emulated else lat, ram, flash, why, budget)
            if counted:  # say how much of a RAM miss is the front-end's
                fe_kib = fe_ram["bytes"] / 1024
                reasons = [
                    f"{x} (model {(ram - fe_ram['bytes']) / 1024:.1f} + front-end {fe_kib:.1f})"
                    if x.startswith("RAM ")
                    else x
                    for x in reasons
                ]
            records.append(
                Record(
                    art["file"],
                    art["format"],
                    art["precision"],
                    name,
                    cls,
                    method,
                    lat,
                    detail,
                    ram,
                    rm,
                    flash,
                    fm,
                    budget,
                    v,
                    reasons,
                    None if fe_ram is None else {**fe_ram, "in_ram_bytes": counted},
                )  # fmt: skip
            )
    return records


def _target_reason(device: str, art: dict) -> str | None:
    """Why a measured target (``ssh:...``, ``adb:...``) does not run this artifact, or None."""
    runner = get_runner(device.split(":", 1)[0])
    fam, runs_on, not_on = facts(art)
    if fam not in runner.runtimes or runner.device_class not in runs_on:
        return not_on.get(runner.device_class) or f"{device} runner does not run {art['format']}"
    return None


def not_checked(p: Plan, records: list[Record]) -> list[str]:
    """What this profile did not check, said in profile.json rather than hidden."""
    out = [
        "latency on catalog devices other than the host is estimated, not measured",
        "the adb runner is untested on a phone (parser tested on recorded outputs only)",
    ]
    for art, _ in p.artifacts:
        if all(r.verdict == "not runnable" for r in records if r.artifact == art["file"]):
            fam, runs_on, _ = facts(art)
            out.append(
                f"{art['file']}: no profiled device runs {fam} (it runs on {', '.join(runs_on)}), "
                "so its latency and RAM were not checked"
            )
    return out


def report(p: Plan, analyses: dict, est: Estimator, records: list[Record], out: Path) -> dict:
    """Write profile/ (profile.json, report.md, report.html, plots) into ``out``; returns the document."""
    from . import report as _report

    doc = {
        "schema": "tinyship.profile/1",
        "run": p.card.get("run", p.run_dir.name),
        "created": _dt.datetime.now(_dt.UTC).isoformat(),
        "card_sha256": rundir.sha256_file(p.run_dir / rundir.CARD),
        "exports_sha256": rundir.sha256_file(p.run_dir / rundir.EXPORTS),
        "settings": p.settings,
        "devices": [d.to_dict() for d in p.devices],
        "artifacts": {k: dataclasses.asdict(a) for k, a in analyses.items()},
        "estimator": est.record,
        "records": [dataclasses.asdict(r) for r in records],
        "not_checked": not_checked(p, records),
    }
    search_file = p.run_dir / "search.json"  # left by tinyship.search: the report plots its fronts
    if search_file.is_file():
        doc["search"] = rundir.read_json(search_file, "student search (search.json)")
    rundir.atomic_write_json(out / "profile.json", doc)
    _report.write(out, doc, p.card, p.exports)
    return doc


def ship(p: Plan, records: list[Record], out: Path, doc: dict | None = None) -> list[str]:
    """Write ship/ into ``out``: the artifacts that passed export's gate and fit at least one
    device, with manifest.json; returns their names. A gate-failed or unchecked file never ships."""
    gate = {art["file"] for art, _ in p.artifacts if art.get("passed") is True}
    passing = sorted({r.artifact for r in records if r.verdict == "fits" and r.artifact in gate})
    _write_ship(out, p.run_dir, passing, p.card, p.exports, records)
    if doc is not None:  # the model card reads the profile document for its recommendations
        from . import model_card

        manifest = rundir.read_json(out / "manifest.json", "ship manifest")
        model_card.write(out, p.card, p.exports, doc, manifest)
    return passing


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
) -> ProfileReport:
    """Profile every artifact of ``run_dir/export`` on the selected devices; write profile/ and ship/.

    ``devices``: catalog names (default: the recipe's ``devices.targets``); ``targets``:
    machines to measure on besides the host (:func:`ssh_targets`, :func:`adb_targets`);
    ``stack``: the MCU inference stack the MCU estimates model (default: the catalog's default).
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
    analyses = analyse(p)
    measured = measure(p)
    est = estimate(p, analyses, measured)
    records = verdicts(p, analyses, measured, est)
    with rundir.staged_dirs(p.run_dir, ("profile", "ship"), force=force) as out:
        doc = report(p, analyses, est, records, out["profile"])
        passing = ship(p, records, out["ship"], doc)  # profile/ and ship/ are committed together
    return ProfileReport(
        doc["run"], records, doc["artifacts"], est.record, doc["devices"],
        p.run_dir / rundir.PROFILE, passing, doc["not_checked"],
    )  # fmt: skip


# ---------------------------------------------------------------- helpers


def _memory(a: dict, dev: Device) -> tuple[int | None, str, int | None, str]:
    """(RAM bytes, how, flash bytes, how) of one analysed artifact on one device."""
    peak = a.get("peak_activation_bytes")
    tflm = a.get("tflm_arena_bytes")
    deq = a.get("dequantized_weight_bytes") or 0
    ovh = (dev.runtime.get("ram_overhead_bytes") or {}).get("value")
    code = (dev.runtime.get("flash_overhead_bytes") or {}).get("value")
    if peak is None:
        return None, "not analysed", a["bytes"], "file bytes"
    if dev.cls in ("mcu", "pda"):  # an interpreter with one arena (TFLite Micro)
        tail = a.get("tflm_tail_estimate_bytes")
        arena = tflm or (peak + (tail or 0))
        ram = arena + deq + (ovh or 0)
        if tflm:
            rm = "TFLite Micro arena measured (head: activations + scratch; tail: persistent buffers)"
        elif tail:
            rm = (
                "arena plan of the activations + TFLM persistent tail estimated (TFLite Micro did not "
                "run; scratch buffers not included)"
            )
        else:
            rm = "arena plan of the activations (TFLite Micro did not run: scratch/persistent not included)"
        rm += " + dequantized weights" if deq else ""
        rm += " + runtime overhead" if ovh else "; runtime RAM overhead not found, not included"
        flash = a["bytes"] + (code or 0)
        fm = "model flatbuffer bytes"
        fm += " + runtime code" if code else "; runtime code size not found, not included"
        return int(ram), rm, int(flash), fm
    ram = peak + (a.get("weight_bytes") or 0) + deq + (ovh or 0)
    rm = "arena plan + weights loaded in RAM" + (" + dequantized weights" if deq else "")
    rm += "" if ovh else "; runtime overhead not found, not included"
    return int(ram), rm, int(a["bytes"]), "file bytes (storage)"


def _with_frontend(
    ram: int | None, how: str, fe: dict | None, dev: Device
) -> tuple[int | None, str, bool]:
    """(RAM, how, counted): an audio front-end's buffers are added on MCU/PDA classes, where the
    firmware holds them beside the arena; elsewhere (an OS, a front-end of the app's choosing) they
    are said, not counted."""
    if fe is None:
        return ram, how, False
    if fe.get("bytes") is None:
        return ram, f"{how}; {fe['why']}", False
    if dev.cls not in MICRO_CLASSES:
        return (
            ram,
            f"{how}; audio front-end buffers ({fe['bytes']:,} B on an MCU) not included",
            False,
        )
    if ram is None:
        return ram, how, False
    return ram + fe["bytes"], f"{how} + audio front-end buffers {fe['bytes']:,} B", True


def _input_npy(run_dir: Path, tmp: Path) -> Path | None:
    cal = run_dir / rundir.CALIBRATION
    if not cal.is_file():
        return None
    x = rundir.read_npz(cal, "calibration.npz", ("x",))["x"]
    path = tmp / "input.npy"
    # the first row is the timed input; up to 16 rows let remote boards check parity with the host
    np.save(path, x[:16].astype(np.float32), allow_pickle=False)
    return path


def _progress(items, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, file=sys.stderr, leave=False)
    except ImportError:
        return items


def _write_ship(
    out: Path, run_dir: Path, passing: list[str], card: dict, exports: dict, records: list[Record]
) -> None:
    arts = {a["file"]: a for a in exports.get("artifacts", [])}
    files = []
    for name in passing:
        src = run_dir / "export" / name
        if src.is_dir():
            shutil.copytree(src, out / name)
        else:
            shutil.copy2(src, out / name)
        a = arts[name]
        sha = rundir.sha256_file(out / name)
        if sha != a["sha256"]:  # the copy is what ships: it must be the bytes export checked
            raise UserError(
                f"'{src}' changed while it was profiled (sha256 {sha[:12]}…, exports.json "
                f"{a['sha256'][:12]}…); nothing was shipped. {_RERUN_EXPORT}"
            )
        c_pair = _mcu_c_files(out, src, name, a, card, records)
        files.append(
            {
                **({"c_files": c_pair} if c_pair else {}),
                "file": name,
                "format": a["format"],
                "precision": a["precision"],
                "bytes": rundir.path_bytes(out / name),
                "sha256": sha,
                "checked_sha256": a["sha256"],
                "input": a.get("input"),
                "output": a.get("output"),
                "accuracy": a.get("accuracy"),
                "parity": a.get("parity"),
                "devices": {
                    r.device: {
                        "verdict": r.verdict,
                        "method": r.method,
                        "latency_ms": r.latency_ms,
                        "ram_bytes": r.ram_bytes,
                        "flash_bytes": r.flash_bytes,
                    }
                    for r in records
                    if r.artifact == name
                },
            }
        )
    rundir.atomic_write_json(
        out / "manifest.json",
        {
            "schema": "tinyship.ship/1",
            "run": card.get("run"),
            "input": card.get("input"),
            "output": card.get("output"),
            "labels": card.get("labels"),
            "metrics": (card.get("metrics") or {}).get("holdout"),
            "files": files,
            "rule": "an artifact ships when it passed export's gate and fits at least one profiled device "
            "(see profile/profile.json); its sha256 is the one export checked",
            "upstream": {
                "card_sha256": rundir.sha256_file(run_dir / rundir.CARD),
                "exports_sha256": rundir.sha256_file(run_dir / rundir.EXPORTS),
            },
        },
    )


def _mcu_c_files(
    out: Path, src: Path, name: str, art: dict, card: dict, records: list[Record]
) -> dict | None:
    """model_data.h/.c beside a full-int8 .tflite that fits a microcontroller (devices/mcu_files.py)."""
    mcus = [
        r.device
        for r in records
        if r.artifact == name and r.device_class == "mcu" and r.verdict == "fits"
    ]
    io_int8 = all((art.get(k) or {}).get("dtype") == "int8" for k in ("input", "output"))
    if not mcus or art["format"] != "tflite" or art["precision"] != "int8-full" or not io_int8:
        return None  # the C pair carries int8 I/O scales: only for files whose tensors are int8
    from .mcu_files import c_dir_name, write_model_c

    folder = c_dir_name(name)
    paths = write_model_c(src, out / folder, art, card, art.get("tflm_arena_bytes"))
    return {
        "dir": folder,
        "files": {p.name: rundir.sha256_file(p) for p in paths},
        "devices": mcus,
        "arena_bytes": art.get("tflm_arena_bytes"),
    }


_RECORD_FIELDS = {
    "device": (str,),
    "artifact": (str,),
    "verdict": (str,),
    "budget": (dict,),
    "reasons": (list,),
    "latency_ms": (int, float, type(None)),
    "ram_bytes": (int, type(None)),
    "flash_bytes": (int, type(None)),
}


def _profile_records(doc: Any, path: Path) -> list[dict]:
    """profile.json's records, each with the fields check reads and their types."""
    recs = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(recs, list):
        raise UserError(f"'{path}' has no records list. Re-run python -m devices profile --force.")
    for i, r in enumerate(recs):
        for key, types in _RECORD_FIELDS.items():
            v = r.get(key) if isinstance(r, dict) else None
            if not isinstance(r, dict) or not isinstance(v, types) or isinstance(v, bool):
                raise UserError(
                    f"'{path}' records[{i}].{key} is {v!r}; expected "
                    f"{' or '.join(t.__name__ for t in types)}. Re-run python -m devices profile --force."
                )
        if r["verdict"] == "not runnable" and not r["reasons"]:
            raise UserError(f"'{path}' records[{i}] is 'not runnable' without a reason.")
    return recs


def check(
    run_dir: str | Path,
    budgets: dict[str, dict[str, float]] | None = None,
    artifacts: list[str] | None = None,
) -> tuple[bool, list[dict]]:
    """Re-judge profile.json against budgets: a CI gate.

    Devices checked: those named in ``budgets``, else in the recipe's budgets, else every
    profiled device. Without ``artifacts`` each checked device needs at least one fitting
    artifact (a device where nothing can be judged, e.g. no throughput figure, is reported
    as 'not judged' and gates only when a budget names it); with ``artifacts`` every named
    artifact must fit every checked device.
    """
    run_dir = Path(run_dir)
    doc = rundir.read_json(run_dir / rundir.PROFILE, "profile (profile/profile.json)")
    card = rundir.read_json(run_dir / rundir.CARD, "student card (student/card.json)")
    stale = rundir.stale(run_dir)
    if "profile" in stale:
        raise UserError(
            f"profile/ is stale: {stale['profile']}. Re-run python -m devices profile --force "
            "before checking budgets."
        )
    recipe_budgets = _budgets.recipe_devices_section(card)["budgets"] or {}
    over = budgets or recipe_budgets
    recs = _profile_records(doc, run_dir / rundir.PROFILE)
    known = sorted({r["device"] for r in recs})
    for d in over:
        if d not in known:
            raise UserError(
                f"--budget names device '{d}', which is not in this profile; profiled devices: {', '.join(known)}."
            )
    names = sorted({r["artifact"] for r in recs})
    for a in artifacts or []:
        if a not in names:
            raise UserError(
                f"--artifact '{a}' is not in this profile; artifacts: {', '.join(names)}."
            )
    checked = list(over) if over else known
    rows, ok = [], True
    for d in checked:
        fits_any = False
        for r in recs:
            if r["device"] != d or (artifacts and r["artifact"] not in artifacts):
                continue
            b = {**r["budget"], **over.get(d, {})}
            v, reasons = _budgets.verdict(
                r["latency_ms"],
                r["ram_bytes"],
                r["flash_bytes"],
                r["reasons"][0] if r["verdict"] == "not runnable" else None,
                b,
            )
            rows.append(
                {
                    "device": d,
                    "artifact": r["artifact"],
                    "verdict": v,
                    "reasons": reasons,
                    "budget": b,
                }
            )
            fits_any |= v == "fits"
            if artifacts and v != "fits":
                ok = False
        judged = any(
            r["verdict"] not in ("unknown", "not runnable") for r in rows if r["device"] == d
        )
        if not artifacts and not fits_any:
            if over or judged:
                ok = False
            else:  # nothing could be judged here (no figure, no runtime) and no budget was asked for
                rows.append(
                    {
                        "device": d,
                        "artifact": "-",
                        "verdict": "not judged",
                        "budget": {},
                        "reasons": [
                            "no artifact could be judged on this device (unknown latency or not "
                            "runnable); give it a --budget to make it gate"
                        ],
                    }
                )
    return ok, rows
