"""Crafted ``.pt2`` archives, one per way torch.export.load would run code from the file.

Each payload, if executed, creates a marker file; tests assert torch itself runs it
(so the craft is live) and that tinyship's loader refuses it with no marker written.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch
from torch import nn


class Boom:
    """Unpickling this runs ``exec``: the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plain_pt2(path: Path) -> Path:
    """A genuine exported program (dynamic batch) saved by torch.export.save."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    ep = torch.export.export(
        m, (torch.randn(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},)
    )
    torch.export.save(ep, path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the zip, letting ``edit(rel, data) -> data | None`` change or drop entries, then add extras."""
    with zipfile.ZipFile(src) as zin:
        entries = [(i.filename, zin.read(i)) for i in zin.infolist()]
    root = entries[0][0].split("/", 1)[0] + "/"
    out = {}
    for name, data in entries:
        new = edit(name[len(root) :], data)
        if new is not None:
            out[name] = new
    for rel, data in getattr(edit, "extra", {}).items():
        out[root + rel] = data
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name, data in out.items():
            zout.writestr(name, data)
    return dst


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _config_edit(which: str, mutate):
    def edit(rel, data):
        if rel == f"data/{which}/model_{which}_config.json":
            cfg = json.loads(data)
            mutate(cfg["config"])
            return json.dumps(cfg).encode()
        return data

    return edit


def craft(kind: str, src: Path, dst: Path, marker: Path) -> Path:
    """One crafted archive per entry kind that torch 2.13 would unpickle, eval or compile."""
    boom = _saved(Boom(marker))
    if kind == "sample_inputs":  # weights_only=True fails, torch retries with False
        return _rewrite(
            src, dst, lambda rel, d: _saved((Boom(marker),)) if rel.startswith("data/sample") else d
        )
    if kind == "weight_use_pickle":

        def mut(cfg):
            first = next(iter(cfg.values()))
            first["use_pickle"] = True
            first["path_name"] = "weight_99"

        edit = _config_edit("weights", mut)
        edit.extra = {"data/weights/weight_99": boom}
        return _rewrite(src, dst, edit)
    if kind in ("constant_use_pickle", "custom_obj", "opaque_obj"):
        name = {"constant_use_pickle": "tensor_0", "custom_obj": "custom_obj_0"}.get(
            kind, "opaque_obj_0"
        )

        def mut(cfg):
            cfg["c0"] = {
                "path_name": name,
                "is_param": False,
                "use_pickle": True,
                "tensor_meta": None,
            }

        edit = _config_edit("constants", mut)
        edit.extra = {
            f"data/constants/{name}": boom
            if kind != "opaque_obj"
            else __import__("pickle").dumps(Boom(marker))
        }
        return _rewrite(src, dst, edit)
    if kind == "legacy_weights":  # data/weights/<model>.pt is torch.load-ed with pickles

        def edit(rel, d):
            return None if rel.startswith("data/weights/") else d

        edit.extra = {"data/weights/model.pt": boom}
        return _rewrite(src, dst, edit)
    if kind == "sympy_expr":  # a shape expression string goes to sympy.sympify (eval)
        code = f"__import__('builtins').exec(\"open({str(marker)!r}, 'w').close()\")"

        def edit(rel, d):
            if rel == "models/model.json":
                text = d.decode()
                first = text.index('"expr_str": "') + len('"expr_str": "')
                end = text.index('"', first)
                return (text[:first] + code.replace('"', '\\"') + text[end:]).encode()
            return d

        return _rewrite(src, dst, edit)
    if kind == "guards_code":  # guards become Python source compiled into ep.module()

        def edit(rel, d):
            if rel == "models/model.json":
                g = json.loads(d)
                g["guards_code"] = [f"open({str(marker)!r}, 'w').close() or True"]
                return json.dumps(g).encode()
            return d

        return _rewrite(src, dst, edit)
    if kind == "aoti":  # an AOTInductor folder makes torch dlopen a shared library

        def edit(rel, d):
            return d

        edit.extra = {"data/aotinductor/model/model.so": b"\x7fELF"}
        return _rewrite(src, dst, edit)
    if kind == "foreign_target":  # a graph node calling a non-ATen function

        def edit(rel, d):
            if rel == "models/model.json":
                return d.replace(b"torch.ops.aten.linear.default", b"torch.serialization.load", 1)
            return d

        return _rewrite(src, dst, edit)
    raise ValueError(kind)


def huge_guard(src: Path, dst: Path, guard: str = "9**9**9 > 1") -> Path:
    """A guard whose evaluation never ends (9**9**9 has 370 million digits); torch compiles
    guards into the module and evaluates them on load and on every call."""

    def edit(rel, d):
        if rel == "models/model.json":
            g = json.loads(d)
            g["guards_code"] = [guard]
            return json.dumps(g).encode()
        return d

    return _rewrite(src, dst, edit)


def bomb(src: Path, dst: Path, entry: str = "models/model.json", inflated: int = 512 << 20) -> Path:
    """A small archive whose ``entry`` inflates to ``inflated`` bytes: the genuine JSON padded
    with spaces (valid JSON) and deflated, written in chunks so the test itself stays small."""
    with zipfile.ZipFile(src) as zin:
        entries = [(i.filename, zin.read(i)) for i in zin.infolist()]
    root = entries[0][0].split("/", 1)[0] + "/"
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name, data in entries:
            if name[len(root) :] != entry:
                zout.writestr(name, data)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zout.open(info, "w", force_zip64=True) as fh:
                fh.write(data)
                chunk = b" " * (1 << 20)
                left = inflated - len(data)
                while left > 0:
                    fh.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
    return dst


# kinds whose payload torch itself executes on load (the others are refused by structure)
LIVE = (
    "sample_inputs",
    "weight_use_pickle",
    "constant_use_pickle",
    "opaque_obj",
    "legacy_weights",
    "sympy_expr",
    "guards_code",
)
KINDS = (*LIVE, "custom_obj", "aoti", "foreign_target")
