"""Child process for the fault-injection test: commit profile/ + ship/, SIGKILL itself at step K.

Fault injection lives here, in the test, not in library code: every file-system mutation
the commit makes (os.mkdir, os.replace, os.unlink, os.rmdir, os.fsync, os.chmod, os.open
for writing) is counted; before step K runs the process sends itself SIGKILL.
``python swap_child.py RUN_DIR GEN K`` (K = -1: no kill, print the steps as JSON).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from ground import rundir

STEPS: list[str] = []


def _payload(gen: str) -> dict[str, dict[str, bytes]]:
    return {
        "profile": {
            "profile.json": json.dumps({"gen": gen}).encode(),
            "report.md": gen.encode() * 50,
        },
        "ship": {
            "manifest.json": json.dumps({"gen": gen}).encode(),
            "model.bin": gen.encode() * 999,
        },
    }


def _install(kill_at: int) -> None:
    def wrap(name, fn, show):
        def inner(*args, **kw):
            if show(args, kw):
                STEPS.append(f"{name}({', '.join(_short(a) for a in args[:2])})")
                if len(STEPS) - 1 == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kw)

        return inner

    always = lambda a, k: True  # noqa: E731
    writing = lambda a, k: bool(len(a) > 1 and a[1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))  # noqa: E731
    for name in ("mkdir", "replace", "rename", "unlink", "rmdir", "fsync", "chmod"):
        setattr(os, name, wrap(name, getattr(os, name), always))
    os.open = wrap("open", os.open, writing)


def _short(a) -> str:
    s = str(a)
    return os.path.basename(s) if os.sep in s else s


def main() -> None:
    run_dir, gen, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _install(kill_at)
    with rundir.staged_dirs(run_dir, ("profile", "ship"), force=True) as tmps:
        for stage, files in _payload(gen).items():
            for name, data in files.items():
                rundir.atomic_write_bytes(tmps[stage] / name, data)
    if kill_at < 0:
        print(json.dumps(STEPS))


if __name__ == "__main__":
    main()
