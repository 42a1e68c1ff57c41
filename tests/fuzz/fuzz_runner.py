"""Fuzz the stages with mutated run-directory files; one forked child process per case.

``python fuzz_runner.py BASE WORK N SEED OUT.json [TIMEOUT_S]``: BASE is a run dir with
student/ and export/. Case i mutates one file of a copy of it (bit flips, truncation,
JSON field type swaps or deletions; for model files, with and without the upstream
record's sha256 updated to match), then runs the stage that reads it (export for
student/ files, ``devices profile`` for export/ files) through ``ground.cli.run_cli``
in a forked child. The parent imports torch and the stages once, so each case costs a
fork, not an interpreter start. Recorded per case: exit code or signal, hang, stderr
lines, whether any shipped file's sha256 differs from the one it was checked with, and
which shipped files are changed models (bytes and holdout outputs unlike the base run's).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("TINYSHIP_DEBUG", None)

TARGETS = (
    "student/student.pt2",
    "student/card.json",
    "export/model.fp32.onnx",
    "export/model.fp32.tflite",
    "export/exports.json",
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    if path:
        yield path


def _swap(value, rng: random.Random):
    options = [
        None,
        True,
        -1,
        0,
        2**63,
        1e308,
        -0.5,
        "",
        "x" * 300,
        "../../etc/passwd",
        [],
        {},
        [1, "a"],
        {"a": 1},
    ]
    if isinstance(value, str):
        options += ["/etc/hostname", value + "/../../x", value.upper()]
    options = [o for o in options if type(o) is not type(value) or o != value]
    return rng.choice(options)


def mutate_json(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    obj = json.loads(data)
    paths = list(_leaves(obj))
    path = rng.choice(paths)
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    op = rng.choice(["swap", "swap", "delete", "nan"])
    if op == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
        desc = f"delete {'/'.join(map(str, path))}"
        return json.dumps(obj).encode(), desc
    if op == "nan":
        parent[path[-1]] = float("nan")
        return json.dumps(obj).encode(), f"NaN at {'/'.join(map(str, path))}"
    new = _swap(parent[path[-1]], rng)
    parent[path[-1]] = new
    return json.dumps(obj).encode(), f"{'/'.join(map(str, path))} -> {str(new)[:30]!r}"


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    op = rng.choice(["flip", "flip", "truncate", "zero"])
    b = bytearray(data)
    if op == "truncate":
        n = rng.randrange(0, len(b))
        return bytes(b[:n]), f"truncate to {n} of {len(data)}"
    if op == "zero":
        i = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[i : i + n] = bytes(min(n, len(b) - i))
        return bytes(b), f"zero {n} bytes at {i}"
    flips = rng.randint(1, 8)
    for _ in range(flips):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b), f"flip {flips} bits"


def _rehash(run: Path, target: str) -> None:
    """Make the upstream record agree with the mutated file (a consistent tamper)."""
    f = run / target
    if target == "student/student.pt2":
        card = json.loads((run / "student/card.json").read_text())
        card["sha256"]["student.pt2"] = _sha(f)
        (run / "student/card.json").write_text(json.dumps(card))
    elif target.startswith("export/model"):
        ex = json.loads((run / "export/exports.json").read_text())
        for a in ex["artifacts"]:
            if a["file"] == f.name:
                a["sha256"], a["bytes"] = _sha(f), f.stat().st_size
        (run / "export/exports.json").write_text(json.dumps(ex))


def make_case(base: Path, work: Path, i: int, seed: int) -> dict:
    rng = random.Random(seed * 1_000_003 + i)
    target = TARGETS[i % len(TARGETS)]
    run = work / f"c{i:04d}"
    shutil.copytree(base, run, ignore=shutil.ignore_patterns(".lock"))
    f = run / target
    data = f.read_bytes()
    if target.endswith(".json"):
        new, desc = mutate_json(data, rng)
    else:
        new, desc = mutate_bytes(data, rng)
    f.write_bytes(new)
    rehash = not target.endswith(".json") and rng.random() < 0.6
    if rehash:
        _rehash(run, target)
    if target.startswith("student/"):
        stage = [
            "export",
            "--run",
            str(run),
            "--force",
            "--formats",
            "onnx",
            "--precisions",
            "fp32",
        ]
    else:
        stage = [
            "devices", "profile", "--run", str(run), "--force", "--devices",
            "host,cortex-m4f-stm32l4r5", "--runs", "2", "--warmup", "0",
        ]  # fmt: skip
    return {
        "i": i,
        "target": target,
        "mutation": desc,
        "rehashed": rehash,
        "argv": stage,
        "run": str(run),
        "base": str(base),
    }


def _main_of(name: str):
    if name == "export":
        from export.__main__ import main
    else:
        from devices.__main__ import main
    return main


def run_case(case: dict, timeout_s: float) -> dict:
    from ground.cli import run_cli

    run = Path(case["run"])
    err_path = run.parent / f"{run.name}.stderr"
    main = _main_of(case["argv"][0])
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            code = run_cli(main, case["argv"][1:])
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 3)
    status, hang = None, False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > timeout_s:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            hang = True
            break
        time.sleep(0.02)
    out = dict(case, seconds=round(time.monotonic() - t0, 2), hang=hang)
    if hang:
        out["rc"] = None
    elif os.WIFSIGNALED(status):
        out["rc"] = -os.WTERMSIG(status)
    else:
        out["rc"] = os.WEXITSTATUS(status)
    lines = [ln for ln in err_path.read_text(errors="replace").splitlines() if ln.strip()]
    out["stderr_lines"] = len(lines)
    out["error_lines"] = sum(
        ln.startswith(("error:", "internal error", "interrupted")) for ln in lines
    )
    out["last_line"] = lines[-1][:300] if lines else ""
    out["traceback"] = any("Traceback (most recent call last)" in ln for ln in lines)
    out["bad_ship"] = _check_ship(run) if out["rc"] in (0, 1) else []
    out["changed_shipped"] = _changed_shipped(run, case) if out["rc"] in (0, 1) else []
    shutil.rmtree(run, ignore_errors=True)
    err_path.unlink(missing_ok=True)
    return out


def _changed_shipped(run: Path, case: dict) -> list[str]:
    """Shipped files whose bytes differ from the unmutated base run's (a mutation with its hash
    rewritten in exports.json) AND whose holdout probabilities differ from the base file's by
    more than 1e-4: a changed model that passed as the checked one. A changed byte that leaves
    every output as it was (metadata, padding) is the same model and is not counted."""
    man = run / "ship" / "manifest.json"
    if not man.exists():
        return []
    base = Path(case["base"])
    original = {
        a["file"]: a["sha256"]
        for a in json.loads((base / "export" / "exports.json").read_text())["artifacts"]
    }
    changed = [
        f["file"]
        for f in json.loads(man.read_text()).get("files", [])
        if _sha(run / "ship" / f["file"]) != original.get(f["file"])
    ]
    return [
        name
        for name in changed
        if _prob_diff(base / "export" / name, run / "ship" / name, base) > 1e-4
    ]


def _prob_diff(a: Path, b: Path, base: Path) -> float:
    """Max abs difference of the two files' probabilities on the base run's holdout rows."""
    import numpy as np

    from devices.runners import remote_bench
    from ground import isolate
    from ground.probs import softmax

    x = np.load(base / "student" / "holdout.npz")["x"].astype(np.float32)

    def probs(path: str) -> list:
        y = softmax(remote_bench.predict_rows(path, x, np).reshape(len(x), -1))
        return np.nan_to_num(y, nan=1.0, posinf=1.0, neginf=1.0).tolist()

    pa, pb = (np.asarray(isolate.in_child(probs, str(p), what=str(p))) for p in (a, b))
    return float(np.nan_to_num(np.abs(pa - pb), nan=1.0).max())


def _check_ship(run: Path) -> list[str]:
    """Every shipped file's bytes hash to the sha256 exports.json recorded when export checked it."""
    man = run / "ship" / "manifest.json"
    if not man.exists():
        return []
    bad = []
    exports = json.loads((run / "export" / "exports.json").read_text())
    checked = {
        a.get("file"): a.get("sha256") for a in exports.get("artifacts", []) if isinstance(a, dict)
    }
    for f in json.loads(man.read_text()).get("files", []):
        p = run / "ship" / f["file"]
        got = _sha(p) if p.is_file() else None
        if got is None or got != f.get("sha256") or got != checked.get(f["file"]):
            bad.append(f["file"])
    return bad


def main() -> None:
    base, work, n, seed, out = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    timeout_s = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
    import torch

    torch.set_num_threads(1)
    import devices.__main__  # noqa: F401 - imported once here, forked per case
    import export.__main__  # noqa: F401

    for mod in ("onnx", "onnxruntime", "onnxscript", "torch.onnx", "ai_edge_litert.interpreter"):
        try:
            __import__(mod)
        except ImportError:
            pass

    work.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(n):
        results.append(run_case(make_case(base, work, i, seed), timeout_s))
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
