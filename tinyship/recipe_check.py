"""The whole recipe, every section, validated before any stage runs (issue 41).

Each stage validates its own section when it starts (a stage runs alone too), so a bad
``devices`` or ``export`` section used to fail only after a full distill. ``tinyship run``
and ``tinyship distill`` call :func:`validate_recipe` first: it runs the same validation
each stage runs, from the same field tables, over every section, and also checks the names
a later stage resolves (export formats and precisions, catalog devices and stacks). The
app may import every stage; the stages keep importing only the ground.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ground import recommend
from ground.errors import UserError
from ground.recipe import load_recipe, validate


def _distill(recipe: dict[str, Any]) -> None:
    from distill.building import TEACHER_FIELDS
    from distill.pipeline import validate_recipe as distill_sections
    from distill.specialists import SPECIALIST_FIELDS
    from distill.transfer import TRANSFER_FIELDS

    for key in ("data", "student"):
        if key not in recipe:
            raise UserError(f"recipe section '{key}' is required for the distill stage.")
    distill_sections(recipe, TEACHER_FIELDS, TRANSFER_FIELDS)
    if recipe.get("specialists") is not None:
        validate("specialists", recipe["specialists"], SPECIALIST_FIELDS)


def _export(recipe: dict[str, Any]) -> None:
    from export.registry import plan
    from export.settings import export_settings

    settings = export_settings({"lineage": {"recipe": recipe}})
    plan(settings["formats"], settings["precisions"])  # unknown names fail as export would


def _devices(recipe: dict[str, Any], catalog: str | None, measured_elsewhere: bool) -> None:
    from devices.budgets import recipe_devices_section
    from devices.catalog import load_catalog

    section = recipe_devices_section({"lineage": {"recipe": recipe}})
    cat = load_catalog(catalog)
    for key, resolve in (("targets", cat.select), ("stack", cat.stack)):
        if section[key] is not None:
            try:
                resolve(section[key])
            except UserError as exc:
                raise UserError(f"recipe key 'devices.{key}': {exc}") from None
    if section["stack"] is not None:  # a vendor's stack only on its boards (issue 37)
        try:
            cat.refuse_stack_off_vendor(section["stack"], cat.select(section["targets"]))
        except UserError as exc:
            raise UserError(f"recipe keys 'devices.stack' and 'devices.targets': {exc}") from None
    for name in section["budgets"] or {}:
        if name not in cat.devices and ":" not in name and not measured_elsewhere:
            raise UserError(
                f"recipe key 'devices.budgets' names device '{name}', which is not in the catalog. "
                f"Known devices: {', '.join(cat.devices)}. Add your own with --catalog extra.yaml."
            )


def validate_recipe(
    recipe: str | Path | dict[str, Any],
    *,
    catalog: str | None = None,
    measured_elsewhere: bool = False,
) -> dict[str, Any]:
    """Every section of ``recipe`` as the stages will validate it; UserError naming the first bad
    key. ``measured_elsewhere``: ssh or adb targets may name devices the catalog lacks."""
    if not isinstance(recipe, dict):
        recipe = load_recipe(recipe)
    # the later stages' sections first: their tables import no torch, so a mistake there is
    # refused in about a second; distill's own validation (which imports torch) comes last
    _devices(recipe, catalog, measured_elsewhere)
    _export(recipe)
    recommend.settings({"lineage": {"recipe": recipe}})
    _distill(recipe)
    return recipe
