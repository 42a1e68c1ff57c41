"""docs/architecture.md's "how to add" recipes, run as written: plug-ins from a module outside the repo.

Each plug-in lives in a module written to a temporary folder (the user's own code), registered
by dotted path, and then named from a recipe or a command like a built-in. A format's recipe is
run by tests/export/test_registry.py (a numpy format registered from outside goes through export).
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from ground.errors import InternalError, UserError
from ground.recipe import Field

PLUGIN = '''
"""A user's own plug-ins: a data loader and a teacher member kind."""
import numpy as np
from distill.splits import from_pool


def load_blobs(cfg):
    """data.name: blobs -- Gaussian blobs, one per class, ``centers`` classes."""
    rng = np.random.default_rng(cfg["blob_seed"])
    k = cfg["centers"]
    y = np.repeat(np.arange(k), 120)
    x = (rng.normal(size=(len(y), 4)) + 4.0 * np.eye(k, 4)[y]).astype(np.float32)
    return from_pool("blobs", x, y, [f"blob{i}" for i in range(k)], np.zeros(4, bool), None,
                     cfg, {"loader": "my_plugins:load_blobs"})


class NearestCentre:
    """A teacher member stored as a .npy of class centres: softmax of minus squared distance."""

    kind = "centres"

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.centres = np.load(path)

    def predict_proba(self, x):
        d = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)
        e = np.exp(-(d - d.min(1, keepdims=True)))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def serialized_bytes(self):
        return self.path.stat().st_size, "the .npy file's size"


def load_centres(spec, i, base_dir, num_classes, trust_pickles):
    return NearestCentre(spec["name"], base_dir / spec["path"])
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The user's module on sys.path; every registry put back as it was afterwards."""
    from distill import data_registry, member_loaders

    (tmp_path / "my_plugins.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = (
        dict(data_registry.LOADERS._entries),
        dict(data_registry.LOADER_FIELDS),
        dict(data_registry.DATA_FIELDS),
        dict(member_loaders.MEMBER_LOADERS._entries),
        dict(member_loaders.MEMBER_FIELDS),
    )
    yield tmp_path
    for target, old in zip(
        (
            data_registry.LOADERS._entries,
            data_registry.LOADER_FIELDS,
            data_registry.DATA_FIELDS,
            member_loaders.MEMBER_LOADERS._entries,
            member_loaders.MEMBER_FIELDS,
        ),
        saved,
    ):
        target.clear()
        target.update(old)
    sys.modules.pop("my_plugins", None)


def _register(tmp_path: Path) -> None:
    from distill.data import register_loader
    from distill.member_loaders import register_member_kind

    register_loader(
        "blobs",
        "my_plugins:load_blobs",
        {"centers": Field(int, 3, min=2, max=4), "blob_seed": Field(int, 0, min=0)},
    )
    register_member_kind("centres", "my_plugins:load_centres")


def test_a_loader_and_a_member_kind_from_outside_distill_a_student(plugins: Path):
    """Recipe names both plug-ins; distill runs end to end and the card records them."""
    import distill

    _register(plugins)
    assert "my_plugins" not in sys.modules  # registered by path: imported only when named
    np.save(plugins / "centres.npy", 4.0 * np.eye(3, 4, dtype=np.float32))
    recipe = {
        "data": {"name": "blobs", "centers": 3},
        "teacher": {"members": [{"name": "nc", "kind": "centres", "path": "centres.npy"}]},
        "transfer": {"method": "original"},
        "student": {"kind": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 64, "baseline": False},
    }
    (plugins / "blobs.yaml").write_text(yaml.safe_dump(recipe))
    res = distill.run(plugins / "blobs.yaml", plugins / "run", progress=False)
    card = json.loads((plugins / "run" / "student" / "card.json").read_text())
    assert card["labels"] == ["blob0", "blob1", "blob2"]
    assert card["teacher"]["members"][0]["kind"] == "centres"
    assert res.card["metrics"]["holdout"]["teacher"]["accuracy"] > 0.9


def test_a_plugged_in_name_is_checked_like_a_builtin(plugins: Path):
    from distill.data import load_data
    from distill.member_loaders import load_member, register_member_kind

    _register(plugins)
    with pytest.raises(UserError, match=r"data\.centers.*at most 4|centers"):
        load_data({"name": "blobs", "centers": 9})
    with pytest.raises(UserError, match="kind.*must be one of .*centres"):
        load_member({"name": "m", "kind": "centre"}, 0, plugins)
    with pytest.raises(InternalError, match="'centres' registered twice"):
        register_member_kind("centres", "my_plugins:load_centres")
    with pytest.raises(InternalError, match="'python' registered twice"):
        register_member_kind("python", "my_plugins:load_centres")


def test_a_device_from_an_extra_catalog_is_profiled(exported_run: Path, tmp_path: Path):
    """How to add a device: a YAML beside the shipped catalog, every figure with its source."""
    import devices

    shipped = yaml.safe_load((Path(devices.__file__).parent / "catalog.yaml").read_text())
    board = dict(shipped["devices"]["cortex-m7-stm32h7a3"], title="my board (an M7 at 280 MHz)")
    board["budget"] = {"latency_ms": 50, "ram_kb": 256, "flash_kb": 1024}
    extra = tmp_path / "my_boards.yaml"
    extra.write_text(yaml.safe_dump({"devices": {"my-board": board}}))
    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    report = devices.profile(
        run,
        ["my-board"],
        catalog=str(extra),
        force=True,
        settings=devices.Settings(runs=3, warmup=1),
    )
    mine = {r.artifact: r for r in report.records if r.device == "my-board"}
    int8 = mine["model.int8-full.tflite"]
    assert int8.method == "estimated" and int8.latency_ms > 0 and int8.verdict == "fits"
    assert mine["model.fp32.onnx"].verdict == "not runnable"  # the board's formats: [tflite]
    doc = json.loads((run / "profile" / "profile.json").read_text())
    assert "my-board" in {r["device"] for r in doc["records"]}


def test_a_runner_registered_by_path_is_found_without_importing_it(tmp_path, monkeypatch):
    """How to add a runner: a Runner named by dotted path, imported the first time it is asked for."""
    from devices.runners import registry

    (tmp_path / "my_runner.py").write_text(
        textwrap.dedent(
            """
            from devices.runners.base import Runner

            def measure(model, **kw):
                raise RuntimeError("not reached in this test")

            RUNNER = Runner("bench-board", measure, "sbc", "rpi4", ("tflite",), ("threads",))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "RUNNERS", registry._Runners(dict(registry.BUILTIN)))
    registry.register_path("bench-board", "my_runner:RUNNER")
    assert "bench-board" in registry.RUNNERS and "my_runner" not in sys.modules
    assert registry.get("bench-board").reference_device == "rpi4"
    with pytest.raises(InternalError, match="registered twice"):
        registry.register_path("bench-board", "my_runner:RUNNER")
