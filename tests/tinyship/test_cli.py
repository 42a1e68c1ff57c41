"""Exit codes at the command edge: every exception maps to 0/1/2/3/130/143 with one line."""

from __future__ import annotations

import errno
import importlib
import pkgutil

import pytest

from ground import cli, rundir
from ground.errors import InternalError, MissingDependencyError, TinyshipError, UserError
from ground.signals import Terminated


def _raiser(exc: BaseException):
    def main(argv):
        raise exc

    return main


CASES = [
    (UserError("key x is bad\n  and a second line"), 2, r"^error: key x is bad \| and a second line$"),
    (MissingDependencyError("coremltools", "coreml", "Core ML export"), 2, r"^error: Core ML export needs"),
    (InternalError("student shape lost"), 3, r"^internal error \(a tinyship bug.*: student shape lost$"),
    (ValueError("boom"), 3, r"^internal error .*: ValueError: boom$"),
    (RecursionError("deep"), 3, r"RecursionError: deep$"),
    (MemoryError(), 3, r"MemoryError: \(no message\)$"),
    (OSError(errno.ENOSPC, "No space left on device", "/x/model.onnx"), 2, r"^error: disk or permissions: No space"),
    (OSError(errno.EROFS, "Read-only file system", "/ro"), 2, r"Read-only file system '/ro'"),
    (OSError(errno.EIO, "Input/output error"), 3, r"^internal error .*OSError"),
    (KeyboardInterrupt(), 130, r"^interrupted; nothing was committed: every stage folder is as it was"),
    (Terminated(), 143, r"^terminated \(SIGTERM\); nothing was committed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "code", "pattern"), CASES, ids=[type(c[0]).__name__ for c in CASES]
)
def test_exception_maps_to_one_code_and_one_line(exc, code, pattern, capsys):
    assert cli.run_cli(_raiser(exc), []) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(pattern, err.strip()), err


def test_return_codes_pass_through_and_systemexit_is_argparse(capsys):
    assert cli.run_cli(lambda argv: 0, []) == 0
    assert cli.run_cli(lambda argv: 1, []) == 1  # a budget missed is the command's own answer
    with pytest.raises(SystemExit):
        cli.run_cli(_raiser(SystemExit(2)), [])


def test_traceback_only_with_debug(capsys, monkeypatch):
    monkeypatch.delenv("TINYSHIP_DEBUG", raising=False)
    seen = {}

    def main(argv):
        seen["argv"] = argv
        raise ValueError("boom")

    assert cli.run_cli(main, ["--run", "x"]) == 3
    assert "Traceback" not in capsys.readouterr().err
    assert cli.run_cli(main, ["--run", "x", "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("ValueError: boom")
    assert seen["argv"] == ["--run", "x"]  # --debug is the edge's flag, not the command's
    monkeypatch.setenv("TINYSHIP_DEBUG", "1")
    cli.run_cli(main, [])
    assert "Traceback" in capsys.readouterr().err


def _all_error_classes() -> set[type]:
    for pkg in ("tinyship", "distill", "export", "devices"):
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    out, todo = set(), [TinyshipError]
    while todo:
        c = todo.pop()
        out.add(c)
        todo.extend(c.__subclasses__())
    return out


def test_every_tinyship_error_class_maps_to_user_or_internal():
    classes = _all_error_classes()
    assert len(classes) >= 4
    for c in classes:
        family = [b for b in (UserError, InternalError) if issubclass(c, b)]
        assert len(family) == 1 or c is TinyshipError, f"{c.__qualname__} is in neither family"
    assert cli.exit_code(TinyshipError("x")) == 3


def test_an_interrupt_after_a_commit_names_what_was_already_replaced(tmp_path, capsys):
    """Issue 41: `run` said "left as it was" after Ctrl-C although student/ was replaced."""

    def main(argv):
        with rundir.staged_dir(tmp_path, "student") as d:
            (d / "card.json").write_text("{}")
        raise KeyboardInterrupt  # Ctrl-C during the next stage

    assert cli.run_cli(main, []) == 130
    err = capsys.readouterr().err.strip()
    assert f"this command had already replaced {tmp_path}/student/ before it stopped" in err, err
    assert "left as it was" not in err
