"""Devices-stage fixtures: a real exported run (export.run on a trained fixture student) and a local sshd."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real OpenSSH server on 127.0.0.1 with its own config, host key and authorized key."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.proc = None
        self.hostkey = base / "ssh_host_ed25519_key"
        self.userkey = base / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.userkey)], check=True
        )
        (base / "authorized_keys").write_text((base / "id_ed25519.pub").read_text())
        self.new_hostkey()
        (base / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.hostkey}\nUsePAM no\n"
            f"AuthorizedKeysFile {base / 'authorized_keys'}\nStrictModes no\nPermitRootLogin yes\n"
            f"PasswordAuthentication no\nPidFile {base / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
        )
        self.client_config = base / "ssh_config"
        self.client_config.write_text(
            f"Host tinyship-test\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n"
            f"  IdentityFile {self.userkey}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {base / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  ConnectTimeout 10\n"
        )

    def new_hostkey(self) -> None:
        for p in (self.hostkey, Path(str(self.hostkey) + ".pub")):
            p.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.hostkey)], check=True
        )

    def trust_current_key(self) -> None:
        pub = Path(str(self.hostkey) + ".pub").read_text().split()
        (self.base / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")

    def start(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(self.base / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture()
def sshd(tmp_path):
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()) or not shutil.which("ssh"):
        pytest.skip("openssh-server/client not installed (make system-deps installs them)")
    s = Sshd(tmp_path)
    s.trust_current_key()
    s.start()
    yield s
    s.stop()
