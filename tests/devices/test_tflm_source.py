"""Where the TFLite Micro source comes from (issue 35): one setting, TFLM_DIR; by default the vendored
tree beside the repository, else build/tflm-src/tree that `make tflm-source` makes from the pinned
commits. There is no network here: the target is tested by its dry run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from devices.firmware import pins, tree
from ground.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
VENDOR_README = tree.DEFAULT_TREE / "README.md"


def _fake_tree(root: Path) -> Path:
    (root / tree.MARKER).parent.mkdir(parents=True)
    (root / tree.MARKER).write_text("// marker\n")
    return root


def test_tflm_dir_names_the_tree_first_then_the_defaults_in_order(tmp_path):
    vendored, made = tmp_path / "vendor", _fake_tree(tmp_path / "made")
    own = _fake_tree(tmp_path / "own")
    assert tree.find_tree(str(own), (vendored, made)) == own.resolve()
    assert tree.find_tree(None, (vendored, made)) == made.resolve()  # the vendored one is absent
    _fake_tree(vendored)
    assert tree.find_tree(None, (vendored, made)) == vendored.resolve()
    assert tree.find_tree("", (vendored, made)) == vendored.resolve()  # TFLM_DIR= means unset


def test_a_missing_tree_names_tflm_dir_and_make_tflm_source(tmp_path):
    a, b = tmp_path / "vendor", tmp_path / "made"
    unset = (
        r"no TFLite Micro source tree: TFLM_DIR is not set, and none of .*vendor, .*made holds "
        r"one\. Set TFLM_DIR=/path/to/tree .*`make tflm-source` on a machine with network access"
    )
    with pytest.raises(UserError, match=unset):
        tree.find_tree(None, (a, b))
    wrong = (
        rf"no TFLite Micro source tree at TFLM_DIR={tmp_path}/nope \(looked for "
        r".*micro_interpreter\.cc\)\. .*run `make tflm-source`"
    )
    with pytest.raises(UserError, match=wrong):
        tree.find_tree(str(tmp_path / "nope"), (a, b))


def test_the_setting_reaches_tflm_dir_from_the_environment(tmp_path):
    own = _fake_tree(tmp_path / "own")
    code = "from devices.firmware import tree; print(tree.tflm_dir())"
    env = {**os.environ, "TFLM_DIR": str(own), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == str(own.resolve())


@pytest.mark.skipif(not VENDOR_README.is_file(), reason=f"no vendored tree at {tree.DEFAULT_TREE}")
def test_the_pins_are_the_vendored_readmes():
    """pins.py holds the pins in one place; the vendored tree's README is their source."""
    rows = [ln for ln in VENDOR_README.read_text().splitlines() if ln.startswith("| ")]
    for pin in pins.PINS:
        row = next((r for r in rows if pin.repo in r), None)
        assert row is not None, f"{pin.repo} is not in {VENDOR_README}"
        assert re.search(rf"\b{pin.commit}\b", row), (pin, row)
    generated = pins.readme_text()  # the made tree's README: tree.tflm_commit reads it the same way
    assert tree.tflm_commit(tree.DEFAULT_TREE) == pins.PINS[0].commit
    assert re.search(r"tensorflow/tflite-micro \| ([0-9a-f]{7,40})", generated)[1] == pins.PINS[0].commit  # fmt: skip


def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*")) if folder.is_dir() else []


def test_make_tflm_source_dry_run_prints_the_exact_commands():
    dest = ROOT / "build" / "tflm-src"
    before = _listing(dest)
    r = subprocess.run(["make", "-s", "-o", ".venv/.installed", "tflm-source", "DRY_RUN=1"],
                       cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for i, pin in enumerate(pins.PINS):
        clone = dest / pin.folder
        assert lines[2 * i] == (
            f"git clone --filter=blob:none --no-checkout https://github.com/{pin.repo}.git {clone}"
        )
        assert lines[2 * i + 1] == f"git -C {clone} checkout --detach {pin.commit}"
    gen = lines[2 * len(pins.PINS)]
    assert gen.startswith(f"cd {dest / 'tflite-micro'} && ") and "create_tflm_tree.py" in gen
    assert f"CMSIS_NN_PATH={dest / 'cmsis_nn'}" in gen and gen.endswith(str(dest / "tree"))
    assert any(ln.endswith(f"Device/ARMCM55 {dest / 'tree/third_party/cmsis_dfp/Device'}") for ln in lines)  # fmt: skip
    assert _listing(dest) == before  # a dry run clones and writes nothing


def test_the_script_refuses_to_overwrite_a_made_tree(tmp_path, capsys):
    (tmp_path / pins.TREE_NAME).mkdir()
    assert pins.main(["--dest", str(tmp_path)]) == 2
    assert "already exists; remove it to make it again" in capsys.readouterr().err
