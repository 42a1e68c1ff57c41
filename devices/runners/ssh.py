"""SSH runner: a Raspberry Pi or any Linux board, through the user's own ssh and scp.

The user's ssh config, keys and known_hosts apply unchanged; ``ssh_config`` (-F) and
``ssh_options`` (-o ...) are passed through only when given. So that a silent host fails
in seconds rather than blocking on TCP for minutes, ``ConnectTimeout=10``,
``ServerAliveInterval=5`` and ``ServerAliveCountMax=3`` are added after the user's options
(ssh keeps the first value given, so ``ssh_options`` override them). The model, an optional
input and remote_bench.py go to a fresh ``mktemp -d`` folder, which is removed
afterwards even when the benchmark fails.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from ground.errors import UserError

from .base import REMOTE_BENCH, Measurement, Runner, bench_args, from_bench_json, parse_bench_output

DEFAULT_OPTIONS = ("ConnectTimeout=10", "ServerAliveInterval=5", "ServerAliveCountMax=3")


def _base(tool: str, config: str | None, options: list[str] | None) -> list[str]:
    cmd = [tool]
    if config:
        cmd += ["-F", str(config)]
    given = {o.split("=", 1)[0].strip().lower() for o in options or []}
    for o in [*(options or []), *DEFAULT_OPTIONS]:
        if o in DEFAULT_OPTIONS and o.split("=", 1)[0].lower() in given:
            continue
        cmd += ["-o", o]
    return cmd


def _run(cmd: list[str], target: str, what: str, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise UserError(
            f"'{cmd[0]}' not found; install openssh-client to profile over ssh."
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"ssh {what} on '{target}' took over {timeout_s:.0f} s; check the board is reachable."
        ) from exc
    if res.returncode != 0 or "Host key verification failed" in res.stderr:
        if (
            "Host key verification failed" in res.stderr
            or "REMOTE HOST IDENTIFICATION HAS CHANGED" in res.stderr
        ):
            raise UserError(
                f"ssh to '{target}' refused: host key verification failed (the board's host key is not the "
                "one in your known_hosts). If the board was reinstalled, check its fingerprint and update "
                "known_hosts (ssh-keygen -R <host>); tinyship never bypasses this. "
                f"ssh said: {res.stderr.strip()[-300:]}"
            )
        raise UserError(
            f"ssh {what} on '{target}' failed (exit {res.returncode}): {res.stderr.strip()[-400:]}. "
            "Check that 'ssh <target> true' works with your config."
        )
    return res


def measure(
    model: str | Path,
    target: str,
    input_npy: str | Path | None = None,
    threads: int = 1,
    warmup: int = 5,
    runs: int = 50,
    pin_core: int | None = None,
    remote_python: str = "python3",
    ssh_config: str | None = None,
    ssh_options: list[str] | None = None,
    timeout_s: float = 300.0,
) -> Measurement:
    """Copy ``model`` and remote_bench.py to ``target`` (user@host), run it there, parse its JSON, clean up."""
    model = Path(model)
    ssh = _base("ssh", ssh_config, ssh_options)
    scp = _base("scp", ssh_config, ssh_options)
    tmp = _remote_tmp(ssh, target, timeout_s)
    parity = None
    try:
        remote_model = _copy_in(scp, target, tmp, model, input_npy, timeout_s)
        args = _bench_args(
            remote_python, tmp, remote_model, threads, warmup, runs, input_npy, pin_core
        )
        data = _run_bench(ssh, target, args, timeout_s)
        if input_npy is not None:
            parity = _fetch_parity(scp, target, tmp, model, Path(input_npy), timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise UserError(
            f"benchmark on '{target}' took over {timeout_s:.0f} s; lower --runs or check the board."
        ) from exc
    finally:
        _remove(ssh, target, tmp)
    return _measurement(target, data, remote_python, parity)


def _remote_tmp(ssh: list[str], target: str, timeout_s: float) -> str:
    """A fresh ``mktemp -d`` folder on the board, or a UserError quoting what came back."""
    res = _run(ssh + [target, "mktemp -d /tmp/tinyship.XXXXXX"], target, "mktemp", timeout_s)
    tmp = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if not tmp.startswith("/tmp/tinyship."):
        raise UserError(
            f"ssh mktemp on '{target}' returned {res.stdout!r}; expected a /tmp/tinyship.* folder."
        )
    return tmp


def _copy_in(
    scp: list[str],
    target: str,
    tmp: str,
    model: Path,
    input_npy: str | Path | None,
    timeout_s: float,
) -> str:
    """Copy remote_bench.py, the model and the optional input into ``tmp``; the model's remote path."""
    remote_model = f"{tmp}/model{model.suffix}"
    files = [(REMOTE_BENCH, f"{tmp}/remote_bench.py"), (model, remote_model)]
    if input_npy is not None:
        files.append((Path(input_npy), f"{tmp}/input.npy"))
    for local, remote in files:
        _run(
            scp + ["-q", str(local), f"{target}:{remote}"],
            target,
            f"copy of '{local}'",
            timeout_s,
        )
    return remote_model


def _bench_args(
    remote_python: str,
    tmp: str,
    remote_model: str,
    threads: int,
    warmup: int,
    runs: int,
    input_npy: str | Path | None,
    pin_core: int | None,
) -> list[str]:
    """The remote_bench.py command line run on the board."""
    args = [
        remote_python,
        f"{tmp}/remote_bench.py",
        *bench_args(remote_model, threads, warmup, runs, pin_core),
    ]
    if input_npy is not None:
        args += ["--input-npy", f"{tmp}/input.npy", "--outputs-npy", f"{tmp}/outputs.npy"]
    return args


def _run_bench(ssh: list[str], target: str, args: list[str], timeout_s: float) -> dict:
    """Run the benchmark on the board; its JSON, or ssh's own reason when the connection failed."""
    res = subprocess.run(
        ssh + [target, shlex.join(args)], capture_output=True, text=True, timeout=timeout_s
    )
    if res.returncode == 255:
        _run(ssh + [target, "true"], target, "benchmark", timeout_s)  # raises with ssh's reason
    return parse_bench_output(res.stdout + "\n" + res.stderr, f"ssh {target}")


def _fetch_parity(
    scp: list[str], target: str, tmp: str, model: Path, input_npy: Path, timeout_s: float
) -> dict:
    """Copy the board's outputs back and compare them with this host's."""
    with tempfile.TemporaryDirectory(prefix="tinyship-ssh-") as local_tmp:
        remote_out = Path(local_tmp) / "remote.npy"
        _run(
            scp + ["-q", f"{target}:{tmp}/outputs.npy", str(remote_out)],
            target,
            "copy of the outputs",
            timeout_s,
        )
        return _parity_vs_host(model, input_npy, remote_out, timeout_s)


def _remove(ssh: list[str], target: str, tmp: str) -> None:
    """Remove the board's folder; a board that went away keeps it."""
    try:
        subprocess.run(
            ssh + [target, shlex.join(["rm", "-rf", tmp])],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pass  # the board went away; its /tmp folder is left


def _measurement(target: str, data: dict, remote_python: str, parity: dict | None) -> Measurement:
    """remote_bench.py's JSON as a Measurement, with how the board ran it."""
    m = from_bench_json("ssh", target, data)
    m.extra["remote_python"] = remote_python
    if parity is not None:
        m.extra["parity_vs_host"] = parity
    emulated = (data.get("machine") or {}).get("emulated")
    if emulated:
        m.extra["emulated"] = emulated
    return m


def _parity_vs_host(model: Path, input_npy: Path, remote_out: Path, timeout_s: float) -> dict:
    """The board's outputs against this host's for the same file and inputs (the host's agree with the
    student: export checked them), so a board's own kernels (e.g. Arm) are checked too."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="tinyship-ssh-") as tmp:
        local_out = Path(tmp) / "host.npy"
        res = subprocess.run(
            [
                sys.executable,
                str(REMOTE_BENCH),
                "--model",
                str(model),
                "--runs",
                "1",
                "--warmup",
                "0",
                "--input-npy",
                str(input_npy),
                "--outputs-npy",
                str(local_out),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        parse_bench_output(res.stdout + "\n" + res.stderr, f"host ({model.name})")
        a = np.load(local_out, allow_pickle=False)
        b = np.load(remote_out, allow_pickle=False)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return {
        "n": int(len(a)),
        "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
        "max_abs_diff": float(np.abs(a - b).max()),
        "against": "this host's runtime on the same file and inputs",
    }


RUNNER = Runner(
    "ssh",
    measure,
    device_class="sbc",
    reference_device="rpi4",
    runtimes=("onnxruntime", "litert"),
    settings=("input_npy", "threads", "warmup", "runs", "pin_core"),
    address_arg="target",
)
