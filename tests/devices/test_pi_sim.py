"""The Raspberry Pi stand-in end to end: make pi-sim's arm64 root, its sshd, profile --ssh there.

Slow (debootstrap under qemu-user takes minutes; an existing root in $PI_SIM_DIR is reused) and
needs root, debootstrap, qemu-user-static and the Debian mirror.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "devices" / "pi_sim" / "pi_sim.sh"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pi_sim():
    if (
        os.geteuid() != 0
        or not shutil.which("debootstrap")
        or not shutil.which("qemu-aarch64-static")
    ):
        pytest.skip("pi-sim needs root, debootstrap and qemu-user-static (make system-deps)")
    env = {**os.environ, "PI_SIM_DIR": os.environ.get("PI_SIM_DIR", str(ROOT / "build" / "pi-sim"))}
    subprocess.run([str(SCRIPT), "build"], check=True, env=env, cwd=ROOT, timeout=3600)
    subprocess.run([str(SCRIPT), "start"], check=True, env=env, cwd=ROOT, timeout=300)
    yield Path(env["PI_SIM_DIR"])
    subprocess.run([str(SCRIPT), "stop"], env=env, cwd=ROOT, timeout=120)


def test_profile_over_ssh_on_the_arm64_stand_in(pi_sim, exported_run, tmp_path):
    import devices

    run = tmp_path / "run"
    shutil.copytree(exported_run, run)
    devices.profile(
        run,
        ["host", "rpi4"],
        targets=devices.ssh_targets(["pi-sim"], ssh_config=str(pi_sim / "ssh_config")),
        settings=devices.Settings(runs=3, warmup=1),
        force=True,
    )
    doc = json.loads((run / "profile" / "profile.json").read_text())
    recs = [r for r in doc["records"] if r["device"] == "ssh:pi-sim"]
    arts = {
        a["file"] for a in json.loads((run / "export" / "exports.json").read_text())["artifacts"]
    }
    assert {r["artifact"] for r in recs if r["method"] == "measured"} == {
        a for a in arts if a.endswith((".onnx", ".tflite"))
    }
    for r in recs:
        if r["method"] != "measured":
            continue
        lat = r["latency"]
        assert lat["machine"]["arch"] == "aarch64"
        assert (
            lat["timing"] == "emulated, not a device timing"
            and "qemu-user" in lat["extra"]["emulated"]
        )
        par = lat["extra"]["parity_vs_host"]
        assert par["n"] >= 1 and par["top1_agreement"] >= 0.99, (r["artifact"], par)
        assert r["verdict"] != "too slow"  # an emulated timing is never judged against a budget
