"""The device catalog: device classes with clock, MACs/cycle, RAM, flash, each figure with its source.

The catalog ships as ``catalog.yaml`` beside this module; users add or override
devices with their own YAML (``--catalog extra.yaml``). The host's figures are
detected at run time from /proc (DESIGN.md "Devices").
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground.errors import UserError

FIGURES = (
    "core",
    "clock_mhz",
    "cores",
    "simd",
    "int8_macs_per_cycle",
    "fp32_macs_per_cycle",
    "ram_bytes",
    "flash_bytes",
    "mem_bw_bytes_per_s",
)
# optional figures: absent means "not found" (the estimators then assume the neutral value)
OPTIONAL_FIGURES = ("issue_width",)
CLASSES = ("host", "sbc", "phone", "pda", "mcu")
FORMATS = ("onnx", "tflite", "coreml")  # export format names (exports.json "format")


@dataclass
class Figure:
    """One catalog figure with where it came from; ``value`` None means 'not found'."""

    value: Any
    source: str
    derivation: str | None = None


@dataclass
class Device:
    name: str
    cls: str
    title: str
    figures: dict[str, Figure]
    formats: list[str]
    runtime: dict[str, Any]
    budget: dict[str, float]
    core_family: str | None = None  # e.g. armv7e-m: estimates transfer between boards of one family
    # how firmware for it is built and emulated: {core, machine, source, flash_wait_states} (firmware/)
    emulation: dict[str, Any] | None = None
    vendor: Figure | None = None  # the chip's vendor: a vendor's stack runs only on its parts
    budget_source: str | None = None  # why the budget is what it is, where it is not a bare policy

    def value(self, key: str) -> Any:
        f = self.figures.get(key)
        return None if f is None else f.value

    @property
    def clock_hz(self) -> float | None:
        mhz = self.value("clock_mhz")
        return None if mhz is None else float(mhz) * 1e6

    def macs_per_cycle(self, dtype: str) -> float | None:
        return self.value(
            "int8_macs_per_cycle" if dtype in ("int8", "hybrid") else "fp32_macs_per_cycle"
        )

    def throughput(self, dtype: str) -> float | None:
        """Work per cycle the MCU stack model divides by: the MAC peak x the instructions issued per
        cycle (a dual-issue core runs a kernel's loads, shifts and requantization beside its MACs;
        issue_width not found counts as 1)."""
        peak = self.macs_per_cycle(dtype)
        width = self.value("issue_width")
        return None if peak is None else peak * (width or 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.cls,
            "title": self.title,
            "figures": {
                k: {
                    "value": f.value,
                    "source": f.source,
                    **({"derivation": f.derivation} if f.derivation else {}),
                }
                for k, f in self.figures.items()
            },
            "formats": self.formats,
            "runtime": self.runtime,
            "budget": self.budget,
            **({"core_family": self.core_family} if self.core_family else {}),
            **({"emulation": self.emulation} if self.emulation else {}),
            **(
                {"vendor": {"value": self.vendor.value, "source": self.vendor.source}}
                if self.vendor
                else {}
            ),
            **({"budget_source": self.budget_source} if self.budget_source else {}),
        }


@dataclass
class Stack:
    """A named MCU inference stack and the published runs (model, board, inferences/s, source) it is fitted on."""

    name: str
    title: str
    calibration: str
    runs: list[dict[str, Any]]
    default: bool = False
    vendors: list[str] | None = None  # chip vendors whose parts it runs on; None: any Arm Cortex-M
    vendors_source: str = ""

    def refusal(self, dev: Device) -> str | None:
        """Why this stack does not exist on MCU board ``dev`` (its vendor's parts only), or None."""
        if dev.cls != "mcu" or self.vendors is None:
            return None
        vendor = dev.vendor.value if dev.vendor else None
        if vendor in self.vendors:
            return None
        made = f"made by {vendor}" if vendor else "a board whose vendor the catalog does not give"
        return (
            f"stack '{self.name}' runs only on {' or '.join(self.vendors)} parts (catalog "
            f"stacks.{self.name}.vendors_source); '{dev.name}' is {made}"
        )


@dataclass
class Catalog:
    devices: dict[str, Device] = field(default_factory=dict)
    stacks: dict[str, Stack] = field(default_factory=dict)
    reference_models: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def default_stack(self) -> str:
        return next(
            (s.name for s in self.stacks.values() if s.default), next(iter(self.stacks), "")
        )

    def stack(self, name: str | None) -> Stack:
        """The named stack (None: the default), or a UserError listing the stacks."""
        name = name or self.default_stack
        if name not in self.stacks:
            raise UserError(
                f"unknown stack '{name}'. Known stacks: {', '.join(self.stacks)} (catalog 'stacks:'); "
                "pick one with --stack."
            )
        return self.stacks[name]

    def refuse_stack_off_vendor(self, stack: str, devices: list[Device]) -> None:
        """UserError when ``stack`` is asked for on MCU boards its vendor does not support, naming
        the stack, the boards and the boards it runs on (issue 37: X-CUBE-AI on STM32 only)."""
        st = self.stack(stack)
        bad = [d for d in devices if st.refusal(d)]
        if not bad:
            return
        ok = [d.name for d in self.devices.values() if d.cls == "mcu" and not st.refusal(d)]
        raise UserError(
            f"{st.refusal(bad[0])}"
            + (f" (also: {', '.join(d.name for d in bad[1:])})" if bad[1:] else "")
            + f". Boards in the catalog it runs on: {', '.join(ok) or 'none'}. Pick those with "
            f"--devices {','.join(ok)}, or another stack (--stack {self.default_stack})."
        )

    def get(self, name: str) -> Device:
        if name not in self.devices:
            raise UserError(
                f"unknown device '{name}'. Known devices: {', '.join(self.devices)}. "
                "Add your own with --catalog extra.yaml (see devices/README.md)."
            )
        return self.devices[name]

    def select(self, names: list[str] | None) -> list[Device]:
        if not names:
            return list(self.devices.values())
        return [self.get(n) for n in names]


def _figure(dev: str, key: str, raw: Any) -> Figure:
    if not isinstance(raw, dict) or "value" not in raw or "source" not in raw:
        raise UserError(
            f"catalog device '{dev}' figure '{key}' must be a mapping with 'value' and 'source' "
            f'(use value: null, source: "not found" when unknown); got {raw!r}.'
        )
    src = raw["source"]
    if not isinstance(src, str) or not src.strip():
        raise UserError(
            f"catalog device '{dev}' figure '{key}' has an empty source; every figure needs one."
        )
    return Figure(raw["value"], src, raw.get("derivation"))


def _parse_device(name: str, raw: dict) -> Device:
    if not isinstance(raw, dict):
        raise UserError(f"catalog device '{name}' must be a mapping; got {type(raw).__name__}.")
    cls = raw.get("class")
    if cls not in CLASSES:
        raise UserError(
            f"catalog device '{name}' has class {cls!r}; allowed: {', '.join(CLASSES)}."
        )
    missing = [k for k in FIGURES if k not in raw]
    if missing:
        raise UserError(
            f"catalog device '{name}' lacks figures {missing}; each needs {{value, source}}."
        )
    figures = {k: _figure(name, k, raw[k]) for k in FIGURES}
    for k in OPTIONAL_FIGURES:
        if k in raw:
            figures[k] = _figure(name, k, raw[k])
            v = figures[k].value
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 1):
                raise UserError(
                    f"catalog device '{name}' {k}.value must be a number >= 1 or null; got {v!r}."
                )
    formats = list(raw.get("formats", []))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(
            f"catalog device '{name}' lists formats {bad}; allowed: {', '.join(FORMATS)}."
        )
    budget = dict(raw.get("budget") or {})
    for k in budget:
        if k not in ("latency_ms", "ram_kb", "flash_kb"):
            raise UserError(
                f"catalog device '{name}' budget key '{k}' unknown; allowed: latency_ms, ram_kb, flash_kb."
            )
    return Device(
        name,
        cls,
        str(raw.get("title", name)),
        figures,
        formats,
        dict(raw.get("runtime") or {}),
        budget,
        raw.get("core_family"),
        _emulation(name, raw.get("emulation")),
        None if raw.get("vendor") is None else _figure(name, "vendor", raw["vendor"]),
        _text(f"catalog device '{name}' budget_source", raw.get("budget_source")),
    )


def _text(what: str, v: Any) -> str | None:
    """An optional non-empty string (a source or a note), or a UserError naming it."""
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise UserError(
            f"{what} must be a non-empty string (where the figure comes from); got {v!r}."
        )
    return v


def _emulation(dev: str, raw: Any) -> dict[str, Any] | None:
    """A device's ``emulation:`` entry: the firmware core, the QEMU machine, their source, and the
    board's flash wait states at its clock as a figure ({value, source})."""
    if raw is None:
        return None
    keys = ("core", "machine", "source")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw[k] for k in keys):
        raise UserError(
            f"catalog device '{dev}' emulation must be a mapping with non-empty core, machine and "
            f"source strings (and flash_wait_states: {{value, source}}); got {raw!r}."
        )
    out = {k: raw[k] for k in keys}
    ws = raw.get("flash_wait_states", {"value": None, "source": "not found"})
    f = _figure(dev, "emulation.flash_wait_states", ws)
    if f.value is not None and (
        not isinstance(f.value, int) or isinstance(f.value, bool) or f.value < 0
    ):
        raise UserError(
            f"catalog device '{dev}' emulation.flash_wait_states.value must be an integer >= 0 or "
            f"null; got {f.value!r}."
        )
    out["flash_wait_states"] = {"value": f.value, "source": f.source}
    return out


RUN_KEYS = {"model": str, "board": str, "inferences_per_s": (int, float), "source": str}


def _parse_stack(name: str, raw: Any) -> Stack:
    """A ``stacks:`` entry: title, calibration note and its published runs, each checked and cited."""
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list):
        raise UserError(
            f"catalog stack '{name}' must be a mapping with a 'runs:' list of published runs."
        )
    runs = []
    for i, run in enumerate(raw["runs"]):
        if not isinstance(run, dict) or set(run) != set(RUN_KEYS):
            raise UserError(
                f"catalog stack '{name}' runs[{i}] must have exactly the keys "
                f"{', '.join(RUN_KEYS)}; got {run!r}."
            )
        for k, typ in RUN_KEYS.items():
            ok = isinstance(run[k], typ) and not isinstance(run[k], bool)
            if (
                not ok
                or (k == "inferences_per_s" and run[k] <= 0)
                or (k != "inferences_per_s" and not str(run[k]).strip())
            ):
                raise UserError(
                    f"catalog stack '{name}' runs[{i}].{k} must be a positive number or a "
                    f"non-empty string as its kind requires; got {run[k]!r}."
                )
        runs.append(dict(run))
    vendors = raw.get("vendors")
    if vendors is not None and (
        not isinstance(vendors, list)
        or not vendors
        or not all(isinstance(v, str) and v for v in vendors)
    ):
        raise UserError(
            f"catalog stack '{name}' vendors must be a non-empty list of vendor names (as devices "
            f"give them in 'vendor:'); got {vendors!r}."
        )
    src = _text(f"catalog stack '{name}' vendors_source", raw.get("vendors_source"))
    if vendors is not None and src is None:
        raise UserError(
            f"catalog stack '{name}' lists vendors {vendors} without a vendors_source: say where the "
            "restriction comes from."
        )
    return Stack(
        name,
        str(raw.get("title", name)),
        str(raw.get("calibration", "")),
        runs,
        bool(raw.get("default", False)),
        vendors,
        src or "",
    )


REFERENCE_WORK = ("conv", "pointwise", "depthwise", "fc", "elementwise")


def _parse_reference_model(name: str, raw: Any) -> dict[str, Any]:
    """A ``reference_models:`` entry: n_ops, outputs (conv/FC output elements) and work per kind."""

    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    work = raw.get("work") if isinstance(raw, dict) else None
    if (
        not isinstance(work, dict)
        or not set(work) <= set(REFERENCE_WORK)
        or not all(count(v) for v in work.values())
        or not all(count(raw.get(k)) for k in ("n_ops", "outputs"))
    ):
        raise UserError(
            f"catalog reference_models.{name} must have integer n_ops >= 0, outputs >= 0 (output "
            f"elements of its conv/FC layers) and work: a mapping of {', '.join(REFERENCE_WORK)} to "
            f"integers >= 0; got {raw!r}."
        )
    return dict(raw)


def _host_detect(dev: Device) -> Device:
    """Replace 'detect' figures of the host with what /proc says on this machine."""
    info: dict[str, str] = {}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                info.setdefault(k, v)
                if k == "flags":
                    flags = set(v.split())
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    mhz = float(info["cpu MHz"]) if "cpu MHz" in info else None
    bits = (
        512
        if "avx512f" in flags
        else 256
        if "avx2" in flags
        else 128
        if ("sse2" in flags or platform.machine() in ("aarch64", "arm64"))
        else None
    )
    vnni = bool(flags & {"avx512_vnni", "avx_vnni"}) or "asimddp" in flags
    fp32 = None if bits is None else bits // 32 * 2
    int8 = None if bits is None else (bits // 8 * 2 if vnni else bits // 16 * 2)
    simd = (
        " ".join(sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "asimd"))))
        or platform.machine()
    )
    detected = {
        "core": info.get("model name", platform.processor() or platform.machine()),
        "clock_mhz": mhz,
        "cores": os.cpu_count(),
        "simd": simd,
        "int8_macs_per_cycle": int8,
        "fp32_macs_per_cycle": fp32,
        "ram_bytes": mem,
    }
    for k, v in detected.items():
        f = dev.figures[k]
        if f.value == "detect":
            dev.figures[k] = Figure(
                v, f.source if v is not None else "not found (detection failed)", f.derivation
            )
    return dev


def load_catalog(extra: str | os.PathLike | None = None) -> Catalog:
    """Load the shipped catalog, then devices from ``extra`` (added or replacing by name)."""
    import yaml

    text = (Path(__file__).parent / "catalog.yaml").read_text()
    docs = [("devices/catalog.yaml", yaml.safe_load(text))]
    if extra is not None:
        p = Path(extra)
        if not p.is_file():
            raise UserError(
                f"catalog file '{p}' not found. Pass --catalog with a YAML file shaped like devices/catalog.yaml."
            )
        try:
            docs.append((str(p), yaml.safe_load(p.read_text())))
        except yaml.YAMLError as exc:
            raise UserError(f"catalog file '{p}' is not valid YAML: {exc}") from exc
    cat = Catalog()
    for where, doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("devices"), dict):
            raise UserError(
                f"catalog '{where}' must be a mapping with a 'devices:' mapping of name -> device."
            )
        for name, raw in doc["devices"].items():
            cat.devices[str(name)] = _parse_device(str(name), raw)
        for name, raw in (doc.get("stacks") or {}).items():
            cat.stacks[str(name)] = _parse_stack(str(name), raw)
        for name, raw in (doc.get("reference_models") or {}).items():
            cat.reference_models[str(name)] = _parse_reference_model(str(name), raw)
    for st in cat.stacks.values():
        for i, run in enumerate(st.runs):
            for key, known in (("model", cat.reference_models), ("board", cat.devices)):
                if run[key] not in known:
                    raise UserError(
                        f"catalog stack '{st.name}' runs[{i}].{key} is '{run[key]}', which the catalog "
                        f"does not define; known: {', '.join(known)}."
                    )
    if "host" in cat.devices:
        _host_detect(cat.devices["host"])
    return cat
