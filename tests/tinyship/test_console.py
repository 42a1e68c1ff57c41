"""The console never cries wolf (issue 38): a closed pipe, FAIL lines and exit codes, files that
were never written, progress bars in files, tables wider than the terminal, flags and hints."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ground import shipseal
from ground.cli import PIPE_CLOSED
from tinyship.command import check_lines, main
from tinyship.summary_format import table

REPO = Path(__file__).resolve().parents[2]
TINYSHIP = [sys.executable, "-c", "from tinyship.command import entry; entry()"]


def _closed_pipe(args: list[str]) -> tuple[int, str]:
    """Run tinyship with a stdout whose reader is gone before anything is written."""
    r, w = os.pipe()
    os.close(r)  # the reader left: the first write or flush raises EPIPE
    p = subprocess.run(
        [*TINYSHIP, *args], stdout=w, stderr=subprocess.PIPE, text=True, cwd=REPO, check=False
    )
    os.close(w)
    return p.returncode, p.stderr


@pytest.mark.parametrize(
    "args", [["summary"], ["catalog"], ["check", "--json"]], ids=["summary", "catalog", "check"]
)
def test_a_closed_pipe_is_a_quiet_141_not_a_tinyship_bug(profiled_run, args):
    """Was: `tinyship summary --run build/demo | head -2` exit 3 'internal error: BrokenPipeError'."""
    run = [] if args[0] == "catalog" else ["--run", str(profiled_run)]
    code, err = _closed_pipe([*args, *run])
    assert code == PIPE_CLOSED == 141, err
    assert "internal error" not in err and "Traceback" not in err and "Exception" not in err, err


def _unjudged_pda(profiled_run: Path, tmp_path: Path) -> Path:
    """A run where nothing on the PDA can be judged: its one runnable file has no latency."""
    run = tmp_path / "run"
    shutil.copytree(profiled_run, run)
    path = run / "profile" / "profile.json"
    doc = json.loads(path.read_text())
    for r in doc["records"]:
        if r["device"] == "pda-pxa270" and r["verdict"] != "not runnable":
            r.update(verdict="unknown", latency_ms=None, method="none")
            r["reasons"] = ["latency unknown (no measurement and no estimate)"]
    path.write_text(json.dumps(doc))
    shipseal.write(run / "ship", path)  # as if profile had written it (ship/SHA256SUMS seals it)
    return run


def test_check_never_prints_fail_lines_and_pass(profiled_run, tmp_path, capsys):
    """Was: 'FAIL  pda-pxa270' twice, then 'check: PASS', exit 0. Unbudgeted and unjudgeable, the
    PDA is a 'skip'; given a budget, its FAIL lines make the exit code 1."""
    run = _unjudged_pda(profiled_run, tmp_path)
    assert main(["check", "--run", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert not [line for line in out if line.startswith("FAIL")], out
    assert any(line.startswith("skip  pda-pxa270:") for line in out) and out[-1] == "check: PASS"
    budget = "pda-pxa270:latency_ms=50"
    assert main(["check", "--run", str(run), "--budget", budget]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("FAIL  pda-pxa270: model.")], out
    assert out[-1].startswith("check: FAIL")


def test_check_lines_skip_a_device_gate_left_unjudged():
    """The lines alone: a device with a 'not judged' row is skipped whatever its first row is."""
    rows = [
        {"device": "pda", "artifact": "a.onnx", "verdict": "not runnable", "reasons": ["onnx"]},
        {"device": "pda", "artifact": "b.tflite", "verdict": "unknown", "reasons": ["no latency"]},
        {"device": "pda", "artifact": "-", "verdict": "not judged", "reasons": ["nothing judged"]},
    ]
    lines = check_lines(True, rows, {"records": []}, None)
    assert lines == ["skip  pda: nothing judged", "check: PASS"]


def test_summary_says_not_written_for_a_failed_export(profiled_run, tmp_path, capsys):
    """Was: model.int8.onnx listed with gate 'pass' when exports.json recorded its error."""
    run = tmp_path / "run"
    shutil.copytree(profiled_run, run)
    shutil.rmtree(run / "ship")  # ship/SHA256SUMS seals what export wrote: nothing shipped here
    path = run / "export" / "exports.json"
    doc = json.loads(path.read_text())
    art = next(a for a in doc["artifacts"] if a["file"].endswith(".onnx"))
    art["error"] = "RuntimeError: quantizer ran out of memory"
    (run / "export" / art["file"]).unlink()
    path.write_text(json.dumps(doc))
    assert main(["summary", "--run", str(run), "--wide"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(art["file"]))
    assert "pass" not in line.split() and "not written: RuntimeError: quantizer ran out" in line
    assert main(["summary", "--run", str(run), "--json"]) == 0
    entry = next(
        e for e in json.loads(capsys.readouterr().out)["exports"] if e["file"] == art["file"]
    )
    assert entry["written"] is False and entry["passed"] is False and entry["accuracy"] is None


def test_summary_fits_the_width_and_wide_shows_everything(profiled_run, capsys, monkeypatch):
    """Was: 35 of 49 lines wider than 120 characters, up to 377."""
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["summary", "--run", str(profiled_run)]) == 0  # stdout is not a terminal: 120
    out = capsys.readouterr().out.splitlines()
    assert max(map(len, out)) <= 120, max(out, key=len)
    assert main(["summary", "--run", str(profiled_run), "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert max(map(len, wide)) > 120  # the same tables, unwrapped: the check above can fail
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["summary", "--run", str(profiled_run)]) == 0
    narrow = capsys.readouterr().out.splitlines()
    assert max(map(len, narrow)) <= 80, max(narrow, key=len)
    assert any("--wide shows every column" in x for x in narrow)


def test_table_wraps_then_hides_columns_and_says_which():
    rows = [["dev", "x" * 50, "1.0 ms", "a long reason " * 6]]
    head = ["device", "file", "latency", "why"]
    full = table(rows, head).splitlines()
    assert len(full) == 3 and rows[0][3].strip() in full[2]  # no width: one line per row
    narrow = table(rows, head, 60, [("wrap", 3), ("drop", 2), ("wrap", 1)]).splitlines()
    assert max(map(len, narrow)) <= 60 and "hidden to fit 60 columns: latency" in " ".join(narrow)
    assert "a long reason" in narrow[2]


def test_no_carriage_returns_when_stderr_is_a_file(profiled_run, tmp_path):
    """Was: ~100 progress-bar frames in the log of `make demo > demo.log`. With stdout and stderr
    in a file, the profile stage prints plain lines, one per stage, and no carriage return."""
    run = tmp_path / "run"
    shutil.copytree(profiled_run, run)
    log = tmp_path / "console.log"
    with log.open("wb") as f:
        p = subprocess.run(
            [*TINYSHIP, "profile", "--run", str(run), "--force", "--devices", "host,rpi4"],
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "TQDM_MININTERVAL": "0"},
        )
    text = log.read_bytes()
    assert p.returncode == 0, text.decode()[-2000:]
    assert b"\r" not in text and b"\x1b[" not in text
    assert b"profile: done in" in text  # the one line per stage that replaces the bars


def test_bars_only_on_a_terminal(monkeypatch):
    from tinyship.command import bars, parser

    args = parser().parse_args(["summary", "--run", "x"])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert bars(args)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not bars(args)


def test_hints_name_the_tinyship_command():
    """Was: error hints said 'python -m distill', 'python -m export ...' or 'see README'. Every
    string in a raise statement outside the python -m entry points names a tinyship command."""
    bad = []
    for pkg in ("ground", "distill", "export", "devices", "tinyship"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            if path.name == "__main__.py":
                continue  # `python -m devices ...` explains its own usage in its own words
            tree = ast.parse(path.read_text())
            raised = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]
            names = {n.targets[0].id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and isinstance(n.targets[0], ast.Name) and n.targets[0].id.startswith("_RERUN")}  # fmt: skip
            for node in raised + [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and
                                  isinstance(n.targets[0], ast.Name) and n.targets[0].id in names]:  # fmt: skip
                for c in ast.walk(node):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        if "python -m " in c.value or "see README" in c.value:
                            bad.append(f"{path.relative_to(REPO)}:{c.lineno}: {c.value.strip()}")
    assert bad == []
