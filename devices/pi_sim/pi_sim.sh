#!/usr/bin/env bash
# A Raspberry Pi stand-in: an arm64 Debian root run through qemu-user-static + binfmt_misc,
# with the aarch64 ai-edge-litert / onnxruntime / numpy wheels from PyPI and its own sshd on
# 127.0.0.1. Timings taken there are emulated, not a device's. Needs root (debootstrap, chroot).
#   pi_sim.sh build   debootstrap + wheels + keys            (idempotent; ~4 min + downloads)
#   pi_sim.sh start   start the chroot's sshd on 127.0.0.1:$PORT; writes $DIR/ssh_config (Host pi-sim)
#   pi_sim.sh stop    stop it and unmount /proc in the root
set -euo pipefail
DIR=${PI_SIM_DIR:-build/pi-sim}
ROOT=$DIR/root
PORT=${PI_SIM_PORT:-2222}
SUITE=${PI_SIM_SUITE:-bookworm}
MIRROR=${PI_SIM_MIRROR:-http://deb.debian.org/debian}
PYVER=3.11  # bookworm's python3
PIP=${PIP:-.venv/bin/pip}
WHEELS="numpy ai-edge-litert onnxruntime"

die() { echo "pi-sim: $*" >&2; exit 2; }

binfmt() {
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc \
    || die "cannot mount binfmt_misc (need root)"
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 \
    || die "qemu-aarch64 binfmt not registered: apt-get install qemu-user-static binfmt-support"
}

build() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
  command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
  command -v qemu-aarch64-static >/dev/null || die "qemu-user-static missing: apt-get install qemu-user-static"
  binfmt
  mkdir -p "$DIR"
  if [ ! -e "$ROOT/.stage2-done" ]; then
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --variant=minbase --foreign --include=python3,openssh-server \
      "$SUITE" "$ROOT" "$MIRROR"
    # the binfmt entry has no F flag: the interpreter must exist inside the root
    interp=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
    mkdir -p "$ROOT$(dirname "$interp")" "$ROOT/usr/bin"
    cp -L "$interp" "$ROOT$interp"
    cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
    touch "$ROOT/.stage2-done"
  fi
  if [ ! -e "$ROOT/.wheels-done" ]; then
    # aarch64 wheels for the root's CPython, installed from the host (no pip inside the root)
    "$PIP" install --quiet --no-compile --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
      --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 --only-binary=:all: \
      --python-version "$PYVER" --implementation cp \
      --target "$ROOT/usr/local/lib/python$PYVER/dist-packages" $WHEELS
    touch "$ROOT/.wheels-done"
  fi
  [ -e "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$DIR/id_ed25519"
  mkdir -p "$ROOT/root/.ssh" "$ROOT/run/sshd"
  cp "$DIR/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
  chmod 700 "$ROOT/root/.ssh"; chmod 600 "$ROOT/root/.ssh/authorized_keys"
  [ -e "$ROOT/etc/ssh/ssh_host_ed25519_key" ] || \
    ssh-keygen -q -t ed25519 -N "" -f "$ROOT/etc/ssh/ssh_host_ed25519_key"
  echo "pi-sim: root ready in $ROOT ($(du -sh "$ROOT" | cut -f1))"
}

start() {
  [ -e "$ROOT/.wheels-done" ] || die "no root in $ROOT: run 'make pi-sim' (pi_sim.sh build) first"
  binfmt
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  # no /sys on purpose: with the host's /sys bound in, onnxruntime's cpuinfo reads x86 CPU data and
  # crashes under qemu-aarch64 (SIGSEGV at import); without it, it warns and runs
  mkdir -p "$ROOT/run/sshd"
  cat > "$ROOT/etc/ssh/sshd_config.pisim" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
PidFile /run/sshd.pisim.pid
# scp (OpenSSH 9) copies over the SFTP protocol
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
  if [ -e "$ROOT/run/sshd.pisim.pid" ] && kill -0 "$(cat "$ROOT/run/sshd.pisim.pid")" 2>/dev/null; then
    echo "pi-sim: sshd already running"; else chroot "$ROOT" /usr/sbin/sshd -f /etc/ssh/sshd_config.pisim; fi
  abs=$(cd "$DIR" && pwd)
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$ROOT/etc/ssh/ssh_host_ed25519_key.pub")" > "$abs/known_hosts"
  cat > "$abs/ssh_config" <<CFG
Host pi-sim
  HostName 127.0.0.1
  Port $PORT
  User root
  IdentityFile $abs/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $abs/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 60
CFG
  for _ in $(seq 1 100); do
    ssh -F "$abs/ssh_config" pi-sim true 2>/dev/null && { echo "pi-sim: sshd on 127.0.0.1:$PORT; ssh -F $abs/ssh_config pi-sim"; return; }
    sleep 0.5
  done
  die "sshd in $ROOT did not answer on 127.0.0.1:$PORT"
}

stop() {
  if [ -e "$ROOT/run/sshd.pisim.pid" ]; then kill "$(cat "$ROOT/run/sshd.pisim.pid")" 2>/dev/null || true; rm -f "$ROOT/run/sshd.pisim.pid"; fi
  mountpoint -q "$ROOT/sys" && umount "$ROOT/sys" || true
  mountpoint -q "$ROOT/proc" && umount "$ROOT/proc" || true
}

case "${1:-}" in
  build) build ;; start) start ;; stop) stop ;;
  *) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
