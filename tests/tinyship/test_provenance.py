"""The commit a figure names is the code's, and a tree with uncommitted edits says so."""

from __future__ import annotations

import subprocess

from ground import provenance


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_commit_is_marked_dirty_by_tracked_edits_only(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_ROOT", tmp_path)
    assert provenance.code_commit() is None  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    sha = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert provenance.code_commit() == sha
    (tmp_path / "notes.txt").write_text("untracked\n")  # an untracked file is not the code
    assert provenance.code_commit() == sha
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.code_commit() == sha + "+dirty"
