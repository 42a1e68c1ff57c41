"""Ship is verified, not trusted (issue 41): check, summary and report verify ship/ against
ship/SHA256SUMS and the hash chain; a file changed together with its hash is caught by the
parity re-run before it is profiled; readers finish a half-done commit or refuse."""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import shutil

import pytest

from ground import rundir, settle, shipseal
from ground.errors import UserError
from tinyship.command import main

P = importlib.import_module("devices.profile")


def _copy(src, tmp_path, name="run"):
    run = tmp_path / name
    shutil.copytree(src, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def _shipped(run):
    return json.loads((run / rundir.MANIFEST).read_text())["files"][0]["file"]


def _flip(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- ship/ verified by its readers


def test_a_fresh_run_verifies_and_sha256sum_agrees(profiled_run):
    import subprocess

    assert shipseal.verify(profiled_run) == []
    r = subprocess.run(
        ["sha256sum", "--check", "--quiet", shipseal.SUMS],
        cwd=profiled_run / "ship",
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "tamper", ["flip", "delete", "symlink", "manifest", "profile", "added", "folder"]
)
def test_check_fails_naming_the_file_after_ship_is_tampered(profiled_run, tmp_path, tamper, capsys):
    """Issue 41: a shipped file flipped, deleted or replaced by a symlink to a system file, an
    edited manifest.json and edited figures in profile.json all gave 'check: PASS'."""
    run = _copy(profiled_run, tmp_path)
    name = _shipped(run)
    target = run / "ship" / name
    if tamper == "flip":
        _flip(target)
        want = rf"ship/{name} changed after it was shipped"
    elif tamper == "delete":
        target.unlink()
        want = rf"ship/{name} is missing"
    elif tamper == "symlink":
        target.unlink()
        target.symlink_to("/etc/passwd")
        want = rf"ship/{name} is a symlink \(to '/etc/passwd'\)"
    elif tamper == "manifest":
        man = json.loads((run / rundir.MANIFEST).read_text())
        man["files"][0]["accuracy"] = 1.0
        (run / rundir.MANIFEST).write_text(json.dumps(man))
        want = r"ship/manifest.json changed after it was shipped"
    elif tamper == "profile":
        prof = json.loads((run / rundir.PROFILE).read_text())
        prof["records"][0]["latency_ms"] = 0.001
        (run / rundir.PROFILE).write_text(json.dumps(prof))
        want = r"profile/profile.json changed after it was shipped"
    elif tamper == "added":
        (run / "ship" / "extra.tflite").write_bytes(b"x")
        want = r"ship/extra.tflite was added after shipping"
    else:
        shutil.rmtree(run / "ship")
        want = r"ship/ is missing beside profile/"
    with pytest.raises(UserError, match=want):
        main(["check", "--run", str(run)])
    assert "/root:" not in capsys.readouterr().out  # the symlink's target is named, never read


def test_summary_reports_the_failure_and_report_refuses(profiled_run, tmp_path, capsys):
    run = _copy(profiled_run, tmp_path)
    name = _shipped(run)
    _flip(run / "ship" / name)
    assert main(["summary", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"FAIL ship/{name} changed after it was shipped" in out
    assert main(["summary", "--run", str(run), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any(name in p for p in doc["ship_problems"])
    before = (run / "ship" / "MODEL_CARD.md").read_bytes()
    with pytest.raises(UserError, match=rf"ship/ is not what tinyship shipped: ship/{name}"):
        main(["report", "--run", str(run)])
    assert (run / "ship" / "MODEL_CARD.md").read_bytes() == before


@pytest.mark.slow  # renders the whole report again (14 s)
def test_report_rewrites_the_model_card_and_keeps_ship_verified(profiled_run, tmp_path, capsys):
    run = _copy(profiled_run, tmp_path)
    (run / "ship" / "MODEL_CARD.md").unlink()
    with pytest.raises(UserError, match=r"ship/MODEL_CARD.md is missing"):
        main(["check", "--run", str(run)])
    shipseal.write(run / "ship", run / rundir.PROFILE)  # as a consistent older run would be
    assert main(["report", "--run", str(run)]) == 0
    assert (run / "ship" / "MODEL_CARD.md").is_file()
    assert shipseal.verify(run) == []


def test_a_ship_without_sums_is_refused_with_the_command_that_rewrites_it(profiled_run, tmp_path):
    run = _copy(profiled_run, tmp_path)
    (run / "ship" / shipseal.SUMS).unlink()
    with pytest.raises(UserError, match=rf"SHA256SUMS is missing.*tinyship profile --run {run}"):
        main(["check", "--run", str(run)])


# ---------------------------------------------------------------- a forged hash is caught


def _plan(run):
    return P.plan(run, ["host"], [], P.Settings(runs=2, warmup=0), None, None, force=True)


def _forge(run, name, edit):
    """Change an exported file, then write its new sha256 and size into exports.json."""
    path = run / "export" / name
    edit(path)
    doc = json.loads((run / rundir.EXPORTS).read_text())
    for a in doc["artifacts"]:
        if a["file"] == name:
            a["sha256"], a["bytes"] = rundir.sha256_file(path), path.stat().st_size
    (run / rundir.EXPORTS).write_text(json.dumps(doc))


def _negate_onnx_weights(path):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = max(m.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(m, str(path))


def test_the_parity_re_run_passes_an_untouched_export(exported_run, tmp_path):
    from devices.reverify import reverify

    run = _copy(exported_run, tmp_path)
    p = _plan(run)
    checked = reverify(run, p.card, p.artifacts)
    assert "model.fp32.onnx" in checked and "model.int8-full.tflite" in checked


def test_a_changed_model_with_its_new_hash_is_not_profiled(exported_run, tmp_path):
    """Issue 41: a byte flip with its new sha256 written into exports.json was profiled and
    shipped (2/2); the hash chain cannot see it, the parity re-run does."""
    run = _copy(exported_run, tmp_path)
    _forge(run, "model.fp32.onnx", _negate_onnx_weights)
    with pytest.raises(
        UserError, match=r"model.fp32.onnx' fails the parity re-run on the holdout before profiling"
    ):
        _plan(run)
    assert not (run / "profile").exists() and not (run / "ship").exists()


def test_a_bit_flipped_tflite_with_its_new_hash_is_a_user_error(exported_run, tmp_path):
    """Issue 38: a bit-flipped .tflite in devices ended in exit 3."""
    run = _copy(exported_run, tmp_path)

    def flip_weights(path):  # the exponent byte of every float32 in the largest 4 KB run
        data = bytearray(path.read_bytes())
        start = len(data) // 2 & ~3
        for i in range(start + 3, min(start + 4096, len(data)), 4):
            data[i] ^= 0x40
        path.write_bytes(bytes(data))

    _forge(run, "model.fp32.tflite", flip_weights)
    with pytest.raises(UserError, match=r"model.fp32.tflite' fails the parity re-run"):
        _plan(run)


def test_an_edited_parity_figure_is_caught(exported_run, tmp_path):
    run = _copy(exported_run, tmp_path)
    doc = json.loads((run / rundir.EXPORTS).read_text())
    art = next(a for a in doc["artifacts"] if a["file"] == "model.int8.onnx")
    art["accuracy"] = 1.0 if art["accuracy"] < 0.9 else 0.5
    (run / rundir.EXPORTS).write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"model.int8.onnx' .* holdout accuracy is now"):
        _plan(run)


# ---------------------------------------------------------------- records validated on read


@pytest.mark.parametrize(
    ("where", "path", "value", "field"),
    [
        ("exports", ("artifacts", 1, "runtime"), True, r"artifacts\[1\]\.runtime is bool True"),
        ("exports", ("artifacts", 0, "accuracy"), [1, "a"], r"artifacts\[0\]\.accuracy is list"),
        ("exports", ("artifacts", 0, "not_on"), 1e308, r"artifacts\[0\]\.not_on is float"),
        ("exports", ("artifacts", 0, "input", "quantization"), True, r"input\.quantization is"),
        ("exports", ("artifacts", 1, "input", "shape"), [1, "a"], r"input\.shape\[1\] is str"),
        ("card", ("lineage",), 1e308, r"lineage is float 1e\+308; expected an object"),
    ],
)
def test_wrong_typed_record_fields_are_exit_2_naming_the_field(
    exported_run, tmp_path, where, path, value, field
):
    """Issue 38: these ended in exit 3 ("a tinyship bug") in the 1,000-case fuzz."""
    run = _copy(exported_run, tmp_path)
    rel = rundir.EXPORTS if where == "exports" else rundir.CARD
    doc = json.loads((run / rel).read_text())
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    (run / rel).write_text(json.dumps(doc))
    with pytest.raises(UserError, match=field + r".*rewrite it with: tinyship"):
        _plan(run)


# ---------------------------------------------------------------- readers repair or refuse


def _half_commit(run):
    """profile/ and ship/ as a kill leaves them between the commit's renames: the journal
    written, profile/ already the new one, ship/ moved aside and its new copy not yet in place."""
    for stage in ("profile", "ship"):
        shutil.copytree(run / stage, run / f".{stage}.x.partial")
    (run / rundir.JOURNAL).write_text(
        json.dumps({"moves": {"profile": ".profile.x.partial", "ship": ".ship.x.partial"}})
    )
    os.replace(run / "profile", run / ".profile.old")
    os.replace(run / ".profile.x.partial", run / "profile")
    os.replace(run / "ship", run / ".ship.old")


def test_check_finishes_a_half_done_commit_before_judging(profiled_run, tmp_path, capsys):
    """Issue 41: after a kill between commit renames, check passed with a new profile/ and a
    missing ship/ (3 of 14 points)."""
    run = _copy(profiled_run, tmp_path)
    _half_commit(run)
    assert not (run / "ship").exists()
    assert main(["check", "--run", str(run)]) == 0
    assert (run / "ship" / "manifest.json").is_file() and not (run / rundir.JOURNAL).exists()
    assert shipseal.verify(run) == []


def test_summary_finishes_it_too(profiled_run, tmp_path, capsys):
    run = _copy(profiled_run, tmp_path)
    _half_commit(run)
    assert main(["summary", "--run", str(run)]) == 0
    assert (run / "ship").is_dir() and not (run / rundir.JOURNAL).exists()


def test_a_reader_refuses_while_a_live_writer_holds_the_commit(profiled_run, tmp_path, monkeypatch):
    run = _copy(profiled_run, tmp_path)
    _half_commit(run)
    monkeypatch.setattr(settle, "WAIT_S", 0.3)
    with open(run / rundir.LOCK, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # a writer in the middle of its renames
        with pytest.raises(UserError, match=r"is being committed by another tinyship process"):
            main(["check", "--run", str(run)])
    assert not (run / "ship").exists()  # nothing was judged or repaired under the writer


@pytest.mark.slow  # profiles the run again (18 s)
def test_check_after_a_device_subset_does_not_blame_an_absent_budget_flag(
    exported_run, tmp_path, capsys
):
    """Issue 41: after `profile --devices <subset>`, check said '--budget names device ...' for
    a budget that came from the recipe."""
    import devices

    run = _copy(exported_run, tmp_path)
    card = json.loads((run / rundir.CARD).read_text())
    recipe = card.setdefault("lineage", {}).setdefault("recipe", {})
    recipe["devices"] = {"budgets": {"host": {"latency_ms": 1000}, "rpi4": {"latency_ms": 50}}}
    (run / rundir.CARD).write_text(json.dumps(card))
    doc = json.loads((run / rundir.EXPORTS).read_text())
    doc["card_sha256"] = rundir.sha256_file(run / rundir.CARD)
    (run / rundir.EXPORTS).write_text(json.dumps(doc))
    devices.profile(run, ["host"], settings=devices.Settings(runs=2, warmup=0), force=True)
    assert main(["check", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "--budget" not in out
    assert "the recipe budgets 'rpi4' but this profile did not include it" in out
    assert "--devices rpi4" in out
