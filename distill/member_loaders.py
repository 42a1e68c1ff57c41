"""Teacher members stored in files: the recipe's ``teacher.members[]`` entries and their loaders.

One loader per ``kind`` (onnx, pt2, TorchScript, keras, SavedModel, precomputed outputs,
sklearn pickle); :mod:`distill.building` adds the loaded members to the teacher. Your own
module adds a kind with :func:`register_member_kind` (by the loader or its dotted path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ground.errors import InternalError, UserError
from ground.lazy import LazyRegistry
from ground.recipe import Field, validate

from .file_members import KerasMember, OnnxMember, PrecomputedMember
from .members import (
    INPUTS,
    OUTPUTS,
    Member,
    NormalizedInput,
    Pt2Member,
    SklearnPickleMember,
    TorchMember,
)

MEMBER_FIELDS: dict[str, Field] = {
    "name": Field(str, doc="unique member name"),
    "kind": Field(
        str,
        choices=("onnx", "pt2", "torch", "keras", "savedmodel", "precomputed", "sklearn-pickle"),
        doc="how the member is stored",
    ),
    "path": Field(
        str,
        default=None,
        doc="model file (onnx, pt2, TorchScript, .keras, pickle) or SavedModel folder, "
        "relative to the recipe file's folder",
    ),
    "input": Field(
        str,
        default="raw",
        choices=INPUTS,
        doc="what the member is fed: raw = the features exactly as in the data file; "
        "normalized = after data.normalize (as the library models are)",
    ),
    "inputs": Field(
        str, default=None, doc="precomputed: .npy of the model-ready inputs the outputs belong to"
    ),
    "outputs": Field(str, default=None, doc="precomputed: .npy of outputs aligned with 'inputs'"),
    "input_shape": Field(
        list,
        default=None,
        check=lambda v: (
            None
            if all(isinstance(i, int) and i > 0 for i in v)
            else "must be a list of positive ints, e.g. [1, 8, 8]"
        ),
        doc="torch (TorchScript): per-row input shape; pt2 and onnx read it from the file",
    ),
    "output": Field(
        str,
        default=None,
        choices=OUTPUTS,
        doc="what the member returns: probs or logits (default: logits for torch/pt2, probs otherwise)",
    ),
    "signature": Field(
        str, default=None, doc="savedmodel: the signature to call (default: serving_default)"
    ),
    "output_name": Field(
        str,
        default=None,
        doc="savedmodel: the signature output holding the probabilities or logits "
        "(default: its only output)",
    ),
}

PICKLE_RISK = (
    "loading a pickle runs arbitrary code from the file, so pickled models are refused by default. "
    "If you made this file yourself or trust its source, pass --trust-pickles (or set "
    "teacher.trust_pickles: true in the recipe); better, convert it to ONNX with skl2onnx."
)


def _resolve(base_dir: Path, spec: dict, key: str, i: int) -> Path:
    value = spec.get(key)
    if not value:
        raise UserError(
            f"recipe key 'teacher.members[{i}].{key}' is required for kind '{spec['kind']}'."
        )
    p = Path(value)
    p = p if p.is_absolute() else Path(base_dir) / p
    if not p.exists():
        raise UserError(
            f"recipe key 'teacher.members[{i}].{key}': file '{p}' not found "
            f"(paths are relative to '{base_dir}'). Fix the path or create the file."
        )
    return p


def _load_onnx(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return OnnxMember(
        spec["name"], _resolve(base, spec, "path", i), output=spec["output"] or "probs"
    )


def _load_pt2(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return Pt2Member(
        spec["name"],
        _resolve(base, spec, "path", i),
        output=spec["output"] or "logits",
        trust_pickles=trust,
    )


def _load_torchscript(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    import torch

    path = _resolve(base, spec, "path", i)
    if not trust:
        raise UserError(
            f"member '{spec['name']}' is a TorchScript archive ('{path}'): TorchScript is a program "
            "and its archive holds pickled parts, so PyTorch's security policy says to load one only "
            "from a source you trust; refused by default. If you made this file yourself or trust "
            "its source, pass --trust-pickles (or set teacher.trust_pickles: true in the recipe); "
            "better, save the model with torch.export.save (kind 'pt2', inspected before loading) "
            "or export it to ONNX (kind 'onnx')."
        )
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise UserError(
            f"member '{spec['name']}': '{path}' is not a TorchScript file ({type(exc).__name__}). "
            "Save with torch.jit.save(torch.jit.script(model)), or use kind 'pt2' for torch.export."
        ) from exc
    return TorchMember(
        spec["name"],
        module,
        output=spec["output"] or "logits",
        path=path,
        input_shape=spec["input_shape"],
    )


def _load_precomputed(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return PrecomputedMember(
        spec["name"],
        _resolve(base, spec, "inputs", i),
        _resolve(base, spec, "outputs", i),
        output=spec["output"] or "probs",
    )


def _load_pickle(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    path = _resolve(base, spec, "path", i)
    if not trust:
        raise UserError(f"member '{spec['name']}' is a pickled model ('{path}'): {PICKLE_RISK}")
    return SklearnPickleMember(spec["name"], path, nc)


def _load_keras(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    return KerasMember(
        spec["name"], _resolve(base, spec, "path", i), output=spec["output"] or "probs"
    )


def _load_savedmodel(spec: dict, i: int, base: Path, nc: int | None, trust: bool) -> Member:
    from .savedmodel import SavedModelMember  # imports tensorflow only when a recipe has one

    return SavedModelMember(
        spec["name"],
        _resolve(base, spec, "path", i),
        output=spec["output"] or "probs",
        signature=spec["signature"],
        output_name=spec["output_name"],
    )


#: (recipe entry, its index, the recipe's folder, number of classes, trust_pickles) -> Member
MemberLoader = Callable[[dict, int, Path, "int | None", bool], Member]

MEMBER_LOADERS: LazyRegistry[MemberLoader] = LazyRegistry(
    {
        "onnx": _load_onnx,
        "pt2": _load_pt2,
        "torch": _load_torchscript,
        "keras": _load_keras,
        "savedmodel": _load_savedmodel,
        "precomputed": _load_precomputed,
        "sklearn-pickle": _load_pickle,
    }
)
#: kinds a recipe cannot name: members built in Python and passed to distill.run
PYTHON_KINDS = ("sklearn", "python")


def register_member_kind(
    name: str, loader: MemberLoader | str, fields: dict[str, Field] | None = None
) -> None:
    """Let a recipe's ``teacher.members[]`` name ``kind: <name>``, loaded by ``loader``.

    ``loader`` is the function or its dotted path ``"package.module:function"`` (imported the
    first time a recipe names the kind); ``fields`` are extra keys its entries may carry, beside
    the shared ones (name, kind, path, input, output, ...).
    """
    if name in MEMBER_LOADERS or name in PYTHON_KINDS:
        raise InternalError(f"teacher member kind {name!r} registered twice")
    clash = sorted(set(fields or {}) & set(MEMBER_FIELDS))
    if clash:
        raise InternalError(f"member kind {name!r} redefines shared member keys {clash}")
    MEMBER_LOADERS[name] = loader
    MEMBER_FIELDS.update(fields or {})
    MEMBER_FIELDS["kind"] = dataclasses.replace(
        MEMBER_FIELDS["kind"], choices=tuple(MEMBER_LOADERS)
    )


def load_member(
    spec: dict,
    i: int,
    base_dir: Path,
    num_classes: int | None = None,
    trust_pickles: bool = False,
    normalize: Normalize | None = None,
) -> Member:
    """Build one explicit member from its recipe entry (validated against MEMBER_FIELDS).

    It is fed raw rows unless it declares ``input: normalized``; then ``normalize`` (the
    data's normalization) is applied first.
    """
    if isinstance(spec, dict) and "kind" in spec and spec["kind"] not in MEMBER_LOADERS:
        raise UserError(
            f"recipe key 'teacher.members[{i}].kind' must be one of {', '.join(MEMBER_LOADERS)}; "
            f"got {spec['kind']!r}. (kind 'sklearn' is for estimators passed in Python.)"
        )
    spec = validate(f"teacher.members[{i}]", spec, MEMBER_FIELDS)
    member = MEMBER_LOADERS[spec["kind"]](spec, i, Path(base_dir), num_classes, trust_pickles)
    if spec["input"] == "normalized":
        return NormalizedInput(member, *(normalize or _IDENTITY))
    member.input_kind = "raw"
    return member


Normalize = tuple[Callable[[np.ndarray], np.ndarray], str]  # (function, a key for fingerprints)
_IDENTITY: Normalize = (lambda x: x, "identity")
