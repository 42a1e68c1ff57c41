"""Measured runners, looked up by name: host (local subprocess), ssh (a Linux board), adb (Android).

Each runner module registers a ``measure(model_path, options) -> Measurement`` function
with :func:`register`; the profile stage loops over what the user asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyship.errors import UserError

REMOTE_BENCH = Path(__file__).with_name("remote_bench.py")


@dataclass
class Measurement:
    """Latency of one model on one machine, in milliseconds, with how it was measured."""

    runner: str
    target: str
    runtime: str
    threads: int
    warmup: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float | None
    mean_ms: float
    spread_ms: float
    spread_kind: str  # "iqr" or "std"
    first_ms: float | None = None
    pin_core: int | None = None
    memory: dict | None = None
    machine: dict | None = None
    extra: dict = field(default_factory=dict)


RUNNERS: dict[str, Callable[..., Measurement]] = {}


def register(name: str):
    def deco(fn):
        RUNNERS[name] = fn
        return fn

    return deco


def get(name: str) -> Callable[..., Measurement]:
    _load_all()
    if name not in RUNNERS:
        raise UserError(f"unknown runner '{name}'; known runners: {', '.join(sorted(RUNNERS))}.")
    return RUNNERS[name]


def _load_all() -> None:
    from . import adb, host, ssh  # noqa: F401  (each registers itself)


def from_bench_json(runner: str, target: str, data: dict) -> Measurement:
    """Turn remote_bench.py's JSON into a Measurement."""
    return Measurement(
        runner,
        target,
        data["runtime"],
        int(data["threads"]),
        int(data["warmup"]),
        int(data["runs"]),
        float(data["p50_ms"]),
        float(data["p90_ms"]),
        float(data["p99_ms"]),
        float(data["mean_ms"]),
        float(data["iqr_ms"]),
        "iqr",
        float(data["first_ms"]),
        data.get("pin_core"),
        None,
        data.get("machine"),
        {
            "std_ms": data.get("std_ms"),
            "min_ms": data.get("min_ms"),
            "max_ms": data.get("max_ms"),
            "input": data.get("input"),
        },
    )


def parse_bench_output(stdout: str, where: str) -> dict:
    """The last JSON line printed by remote_bench.py, or a UserError quoting what came back."""
    import json

    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not data.get("ok"):
                raise UserError(f"benchmark on {where} failed: {data.get('error')}")
            return data
    raise UserError(f"benchmark on {where} printed no JSON result; output was: {stdout[-500:]!r}")
