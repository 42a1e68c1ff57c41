"""The candidates of a student search: the recipe's ``student.search`` grid, expanded and named."""

from __future__ import annotations

import itertools
import json
from typing import Any

from ground.errors import UserError
from ground.recipe import Field


def _list_of(types: tuple[type, ...]):
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not v or not all(isinstance(i, types) for i in v):
            return "must be a non-empty list"
        return None

    return check


SEARCH_FIELDS: dict[str, Field] = {
    "kind": Field(list, ["dscnn"], check=_list_of((str,)), doc="student kinds to try"),
    "channels": Field(list, [16, 32], check=_list_of((int,)), doc="widths to try"),
    "blocks": Field(list, [2, 3], check=_list_of((int,)), doc="depths to try (dscnn blocks)"),
    "first_stride": Field(
        list, [2], check=_list_of((int,)), doc="dscnn: strides of the first conv"
    ),
    "block_stride": Field(
        list,
        None,
        check=_list_of((int,)),
        doc="dscnn: block strides to try (default: the student's own block_stride)",
    ),
    "val_speakers": Field(
        list,
        None,
        check=_list_of((str,)),
        doc="audio_folder: rank candidates on these speakers, held out of a second teacher and of "
        "the candidates' training (a new voice); the full trainings keep the recipe's split",
    ),
    "epochs": Field(int, 6, min=1, doc="short distillation per candidate"),
    "rank_seeds": Field(
        int,
        1,
        min=1,
        max=10,
        doc="seeds each candidate is distilled at; ranked by their mean validation accuracy "
        "(one seed of a short run moves a candidate's accuracy on new voices by points)",
    ),
    "seeds": Field(int, 3, min=1, max=20, doc="full training of each chosen student: seeds"),
    "other_seeds": Field(
        int,
        None,
        min=1,
        max=20,
        doc="full training of a student chosen only for targets after the first "
        "(devices.targets[0] is the product the spread is for): seeds (default: seeds)",
    ),
    "full_epochs": Field(
        int,
        None,
        min=1,
        doc="full training epochs, the learning-rate schedule spread over them (default: "
        "train.epochs, with its early stopping)",
    ),
    "shared_transfer": Field(
        bool,
        True,
        doc="every run of the search (each candidate and full training, at every seed) trains "
        "on one transfer set per teacher, drawn at train.seed and labelled once; seeds then "
        "differ in the student's init and batch order only, and candidates are compared on the "
        "same rows. false: each seed draws its own transfer set (labelled once per seed)",
    ),
}


def seeds_per_student(grid: dict, chosen: dict[str, dict], primary: str | None) -> dict[str, int]:
    """Full-training seeds per chosen student: ``seeds`` for the primary device's student,
    ``other_seeds`` (default ``seeds``) for one chosen only for other devices. Why: the spread
    over seeds backs the product's claim; another device's student costs a whole set of full
    trainings, and one seed of it still gives its accuracy and its shipped files."""
    others = grid.get("other_seeds") or grid["seeds"]
    main = (chosen.get(primary) or {}).get("name") if primary else None
    names = sorted({c["name"] for c in chosen.values() if c["name"]})
    return {n: grid["seeds"] if n == main else others for n in names}


def full_epochs(grid: dict, train: dict) -> tuple[int | None, str]:
    """The full trainings' epoch budget (None: the recipe's ``train.epochs``) and the rule it
    came from, in words (search.json and the progress line say it)."""
    if grid.get("full_epochs") is not None:
        return grid["full_epochs"], f"student.search.full_epochs ({grid['full_epochs']})"
    return (
        None,
        f"train.epochs ({train.get('epochs', 'default')}), as student.search.full_epochs is not set",
    )


def candidates(base: dict, grid: dict) -> list[dict]:
    """The student specs of the grid (keys the kind does not take are dropped from its spec),
    each validated here, so a bad grid value fails before any process starts."""
    from distill.students import STUDENTS, validate_spec

    out, seen = [], set()
    own_stride = base.get("block_stride", STUDENTS["dscnn"].fields["block_stride"].default)
    block_strides = grid.get("block_stride") or [own_stride]
    for kind, ch, blocks, stride, bstride in itertools.product(
        grid["kind"], grid["channels"], grid["blocks"], grid["first_stride"], block_strides
    ):
        if kind not in STUDENTS:
            raise UserError(
                f"recipe key 'student.search.kind' names {kind!r}; allowed: {', '.join(STUDENTS)}."
            )
        fields = STUDENTS[kind].fields
        spec = {k: v for k, v in base.items() if k in fields and k != "search"}
        spec["kind"] = kind
        if kind == "dscnn":
            spec.update(channels=ch, blocks=blocks, first_stride=stride, block_stride=bstride)
        elif kind == "cnn":
            spec["channels"] = [ch * 2**i for i in range(blocks)]
        try:
            validate_spec(spec)
        except UserError as exc:
            raise UserError(f"student.search: candidate {spec_name(spec)}: {exc}") from exc
        key = json.dumps(spec, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def spec_name(spec: dict) -> str:
    if spec["kind"] == "dscnn":
        from distill.students import STUDENTS

        # kernel and block stride named only when not the kind's default, so names stay stable
        default = {k: f.default for k, f in STUDENTS["dscnn"].fields.items()}
        k = spec.get("first_kernel", default["first_kernel"])
        d = spec.get("block_stride", default["block_stride"])
        return (
            f"dscnn-c{spec['channels']}-b{spec['blocks']}"
            f"-s{spec.get('first_stride', default['first_stride'])}"
            + (f"-k{k}" if k != default["first_kernel"] else "")
            + (f"-d{d}" if d != default["block_stride"] else "")
        )
    if spec["kind"] == "cnn":
        return "cnn-" + "-".join(str(c) for c in spec["channels"])
    return spec["kind"] + "-" + "-".join(str(h) for h in spec.get("hidden", []))
