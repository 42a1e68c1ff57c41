"""Untrusted parsing in a forked child: a native crash or a hang becomes one UserError."""

from __future__ import annotations

import os
import time

import pytest

from ground import isolate
from ground.errors import InternalError, UserError


def _segfault():
    import ctypes

    ctypes.string_at(0)


def _abort():
    os.abort()


def _spin():
    while True:
        pass


def _user():
    raise UserError("bad file 'x.onnx'")


def _bug():
    raise KeyError("k")


def test_result_comes_back_as_json():
    assert isolate.in_child(lambda a, b: {"sum": a + b, "l": [1]}, 2, 3, what="x") == {
        "sum": 5,
        "l": [1],
    }


@pytest.mark.parametrize(("fn", "sig"), [(_segfault, "SIGSEGV"), (_abort, "SIGABRT")])
def test_native_crash_is_a_user_error(fn, sig):
    with pytest.raises(
        UserError, match=rf"reading ONNX model 'm.onnx' crashed the parser \({sig}\)"
    ):
        isolate.in_child(fn, what="ONNX model 'm.onnx'")


def test_hang_is_killed_and_a_user_error():
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=r"did not finish in 1 s"):
        isolate.in_child(_spin, what="x", timeout_s=1)
    assert time.perf_counter() - t0 < 10


def test_user_error_keeps_its_message_and_a_bug_stays_a_bug():
    with pytest.raises(UserError, match=r"^bad file 'x.onnx'$"):
        isolate.in_child(_user, what="x")
    with pytest.raises(InternalError, match=r"KeyError"):
        isolate.in_child(_bug, what="x")
