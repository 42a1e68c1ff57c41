"""Folder hashes (.mlpackage) are Merkle hashes over (relative path, size, content); symlinks refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ground import rundir, treehash
from ground.errors import UserError


def _package(root: Path) -> Path:
    pkg = root / "model.fp32.mlpackage"
    (pkg / "Data" / "weights").mkdir(parents=True)
    (pkg / "Manifest.json").write_text('{"itemInfoEntries": {"a": 1}}')
    (pkg / "Data" / "model.mlmodel").write_bytes(bytes(range(256)) * 4)
    (pkg / "Data" / "weights" / "weight.bin").write_bytes(b"\x01\x02" * 500)
    return pkg


def test_moving_a_files_last_byte_into_a_new_file_changes_the_hash(tmp_path):
    """Issue 41: the old hash (names then contents, concatenated) kept its value when the last
    byte of Manifest.json moved into a new file named '}'."""
    pkg = _package(tmp_path)
    before = rundir.sha256_file(pkg)
    text = (pkg / "Manifest.json").read_text()
    (pkg / "Manifest.json").write_text(text[:-1])
    (pkg / "}").write_text(text[-1])
    assert rundir.sha256_file(pkg) != before


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: (p / "Data" / "weights" / "weight.bin").write_bytes(
            b"\x01\x02" * 499 + b"\x01\x03"
        ),
        lambda p: (p / "Data" / "weights" / "weight.bin").rename(p / "Data" / "weights" / "w.bin"),
        lambda p: (p / "Data" / "empty").mkdir(),
        lambda p: (p / "extra.txt").write_text(""),
    ],
)
def test_any_change_of_content_name_or_tree_changes_the_hash(tmp_path, edit):
    pkg = _package(tmp_path)
    before = treehash.tree_sha256(pkg)
    edit(pkg)
    assert treehash.tree_sha256(pkg) != before


def test_the_hash_depends_only_on_the_tree(tmp_path):
    a, b = _package(tmp_path / "a"), _package(tmp_path / "b")
    os.utime(b / "Manifest.json", (0, 0))
    assert rundir.sha256_file(a) == rundir.sha256_file(b)


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc"])
def test_a_symlink_inside_a_model_folder_is_refused(tmp_path, target):
    """Issue 41: symlinks inside an .mlpackage were followed and accepted (2/2)."""
    pkg = _package(tmp_path)
    (pkg / "Data" / "link").symlink_to(target)
    with pytest.raises(UserError, match=r"Data/link' inside .* is a symlink \(to '/etc"):
        rundir.sha256_file(pkg)


def test_a_file_hash_is_still_the_plain_sha256(tmp_path):
    import hashlib

    f = tmp_path / "model.onnx"
    f.write_bytes(b"abc" * 1000)
    assert rundir.sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
