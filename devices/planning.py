"""The plan step: read the run directory, check its integrity chain, resolve what to profile.

Everything the user or the run directory gets wrong fails here, before any work.
"""

from __future__ import annotations

from pathlib import Path

from ground import rundir
from ground.errors import UserError

from . import budgets as _budgets
from .catalog import Catalog, load_catalog
from .judging import facts
from .records import HOST, Plan, Settings, Target
from .reverify import reverify
from .runners import get as get_runner


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
    cat.refuse_stack_off_vendor(
        stack_name, selected
    )  # X-CUBE-AI off STM32: refused before any work
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
    reverify(run_dir, card, artifacts)  # a file changed with its hash is refused here
    host_target = [t for t in targets if t.runner == HOST] or [Target(HOST)]
    others = [t for t in targets if t.runner != HOST]
    return Plan(
        run_dir, card, exports, artifacts, cat, selected, host_target + others, resolved, over,
        stack_name, section["frontend"],
    )  # fmt: skip


_RERUN_EXPORT = "Re-run the export stage: tinyship export --run RUN --force."


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
