"""Bad budgets and device flags end in one UserError line (issue 14 items 4 and 6)."""

from __future__ import annotations

import pytest

from devices.budgets import RECIPE_FIELDS, parse_budget_flag, verdict
from ground.errors import UserError
from ground.recipe import validate

BAD = ["nan", "NaN", "inf", "-inf", "0", "-5", "1e999"]


@pytest.mark.parametrize("value", BAD)
def test_bad_budget_flag_values_are_user_errors(value):
    with pytest.raises(UserError, match=r"latency_ms must be a finite positive number .*got "):
        parse_budget_flag(f"host:latency_ms={value}")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1.0, True, "5"])
def test_bad_recipe_budget_values_are_user_errors(value):
    with pytest.raises(
        UserError, match=r"budget 'host.latency_ms' must be a finite positive number"
    ):
        validate("devices", {"budgets": {"host": {"latency_ms": value}}}, RECIPE_FIELDS)


def test_recipe_dot_nan_in_yaml_is_refused(tmp_path):
    from ground.recipe import read_yaml

    p = tmp_path / "r.yaml"
    p.write_text("devices:\n  budgets:\n    host: {latency_ms: .nan}\n")
    section = read_yaml(p)["devices"]
    with pytest.raises(UserError, match=r"must be a finite positive number"):
        validate("devices", section, RECIPE_FIELDS)


@pytest.mark.parametrize("budget", [{"latency_ms": float("nan")}, {"ram_kb": -1}, {"speed": 1}])
def test_verdict_refuses_a_budget_read_from_a_hand_edited_file(budget):
    with pytest.raises(
        UserError, match=r"must be one of latency_ms, ram_kb, flash_kb with a finite positive"
    ):
        verdict(1.0, 10, 10, None, budget)


@pytest.mark.parametrize("latency", [float("nan"), -1.0, float("inf"), "1"])
def test_verdict_refuses_a_nonsense_figure(latency):
    with pytest.raises(
        UserError, match=r"figure latency_ms=.* is not a finite non-negative number"
    ):
        verdict(latency, 10, 10, None, {"latency_ms": 5})


def test_verdict_still_judges():
    assert verdict(1.0, 10, 10, None, {"latency_ms": 5})[0] == "fits"
    assert verdict(9.0, 10, 10, None, {"latency_ms": 5})[0] == "too slow"


def test_pin_core_outside_the_machine_is_one_clear_line(tmp_path):
    from devices.runners import host

    with pytest.raises(UserError, match=r"--pin-core 999: this machine's usable cores are \d") as e:
        host.measure(tmp_path / "m.onnx", pin_core=999, runs=1, warmup=0)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_ssh_gets_timeouts_by_default_and_the_user_overrides_them():
    from devices.runners.ssh import _base

    cmd = _base("ssh", None, None)
    assert cmd == [
        "ssh",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]
    cmd = _base("ssh", "cfg", ["connecttimeout=3", "Port=2222"])
    assert cmd == ["ssh", "-F", "cfg", "-o", "connecttimeout=3", "-o", "Port=2222"] + [
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]


def test_silent_ssh_host_fails_within_the_connect_timeout(tmp_path):
    """A host that accepts TCP and never speaks: one UserError in seconds, not a 300 s hang."""
    import shutil
    import socket
    import time

    from devices.runners import ssh

    if shutil.which("ssh") is None:
        pytest.skip("ssh client not installed (make system-deps)")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    t0 = time.perf_counter()
    try:
        with pytest.raises(UserError, match=r"ssh mktemp on 'nobody@127.0.0.1' failed"):
            ssh.measure(
                tmp_path / "m.onnx",
                "nobody@127.0.0.1",
                ssh_options=[
                    f"Port={port}",
                    "ConnectTimeout=2",
                    "StrictHostKeyChecking=no",
                    "BatchMode=yes",
                ],
                timeout_s=60,
            )
    finally:
        srv.close()
    assert time.perf_counter() - t0 < 20
