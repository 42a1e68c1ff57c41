"""What every runner shares: the Measurement it returns, the Runner facts, remote_bench.py's JSON.

Runner modules import this and nothing else of the package, so the registry
(:mod:`devices.runners.registry`) can import them on first use without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ground.errors import InternalError, UserError

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


#: The measurement settings a runner may take; each runner names the ones it uses.
SETTINGS = ("input_npy", "threads", "warmup", "runs", "pin_core")


@dataclass(frozen=True)
class Runner:
    """A way to measure on a reachable machine, and the facts the profile stage needs about it.

    ``measure(model, [address_arg=address], **options, **settings)`` returns a Measurement;
    ``settings`` lists which of :data:`SETTINGS` it takes (adb has no input file or pinning);
    ``runtimes`` are the runtime families it runs (exports.json ``runtime_family``);
    ``device_class`` and ``reference_device`` say how a target that is not in the catalog
    is judged (its budget and memory model come from the reference catalog device).
    """

    name: str
    measure: Callable[..., Measurement]
    device_class: str
    reference_device: str
    runtimes: tuple[str, ...]
    settings: tuple[str, ...]
    address_arg: str | None = None

    def __post_init__(self) -> None:
        check_settings(self.name, self.settings)

    def __call__(self, model: str | Path, **kwargs: object) -> Measurement:
        return self.measure(model, **kwargs)

    def run(
        self, model: Path, address: str, options: dict[str, object], settings: dict[str, object]
    ) -> Measurement:
        """Measure ``model`` on ``address`` with the runner's own options and the settings it takes."""
        kwargs = {k: v for k, v in settings.items() if k in self.settings}
        if self.address_arg is not None:
            kwargs[self.address_arg] = address
        return self.measure(model, **options, **kwargs)


def bench_args(model: str, threads: int, warmup: int, runs: int, pin_core: int | None) -> list[str]:
    """remote_bench.py's flags, the same whichever machine runs it (host or a board over ssh)."""
    args = [
        "--model",
        model,
        "--threads",
        str(threads),
        "--warmup",
        str(warmup),
        "--runs",
        str(runs),
    ]
    return args + (["--pin-core", str(pin_core)] if pin_core is not None else [])


def check_settings(name: str, settings: tuple[str, ...]) -> None:
    """Refuse a runner that names a setting the profile stage does not know."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise InternalError(f"runner {name!r} names unknown settings {sorted(unknown)}")


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
