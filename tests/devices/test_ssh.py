"""The ssh runner against a REAL sshd on 127.0.0.1 (started by the sshd fixture)."""

import glob
import shutil
import sys

import pytest

from devices.runners import get
from ground.errors import UserError

REMOTE_LEFTOVERS = "/tmp/tinyship.*/remote_bench.py"


def test_ssh_measures_model_with_awkward_path(sshd, shared_data, tmp_path):
    # folders an interrupted earlier run left behind are not this run's to judge
    before = set(glob.glob(REMOTE_LEFTOVERS))
    odd = tmp_path / "dir with spaces" / 'it\'s a "model".tflite'
    odd.parent.mkdir()
    shutil.copy(shared_data / "mlperf_tiny" / "kws_ref_model.tflite", odd)
    m = get("ssh")(
        odd,
        target="tinyship-test",
        ssh_config=str(sshd.client_config),
        remote_python=sys.executable,
        runs=10,
        warmup=2,
    )
    assert m.runner == "ssh" and m.target == "tinyship-test"
    assert 0 < m.p50_ms <= m.p99_ms and "litert" in m.runtime
    # the remote temp folder is cleaned up
    assert set(glob.glob(REMOTE_LEFTOVERS)) <= before


def test_ssh_changed_host_key_is_refused(sshd, shared_data):
    sshd.stop()
    sshd.new_hostkey()  # known_hosts still holds the old key
    sshd.start()
    with pytest.raises(UserError, match="host key verification failed"):
        get("ssh")(
            shared_data / "mlperf_tiny" / "ad01_int8.tflite",
            target="tinyship-test",
            ssh_config=str(sshd.client_config),
            remote_python=sys.executable,
            runs=2,
        )


def test_profile_over_ssh(sshd, exported_run, tmp_path):
    import devices

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    rep = devices.profile(
        run,
        devices=["host", "rpi4"],
        targets=devices.ssh_targets(
            ["tinyship-test"], str(sshd.client_config), remote_python=sys.executable
        ),
        settings=devices.Settings(runs=5, warmup=1),
        force=True,
    )
    ssh_recs = [
        r for r in rep.records if r.device == "ssh:tinyship-test" and r.method == "measured"
    ]
    assert ssh_recs and all(r.latency["runner"] == "ssh" for r in ssh_recs)


def test_ssh_failure_still_cleans_remote_tmp(sshd, tmp_path):
    import glob

    bad = tmp_path / "broken model.tflite"
    bad.write_bytes(b"not a flatbuffer")
    before = set(glob.glob("/tmp/tinyship.*"))
    with pytest.raises(UserError, match="benchmark on ssh tinyship-test failed"):
        get("ssh")(
            bad,
            target="tinyship-test",
            ssh_config=str(sshd.client_config),
            remote_python=sys.executable,
            runs=2,
        )
    assert set(glob.glob("/tmp/tinyship.*")) <= before  # the remote mktemp folder was removed
