"""A generated zoo of int8 .tflite models, and their emulated cycles per core: the estimator's truth.

Issue 37: the fast MCU estimator must be fitted and validated on data it can be checked against at
will. This module makes that data.

1. ``specs()``: a deterministic list of model specs (plain JSON-able tuples, no randomness left at
   run time): six families (dense conv nets, depthwise-separable nets, MLPs, residual nets with
   ADD, inception-style nets with CONCATENATION, mixed nets with every op kind), widths, kernel
   sizes (1/3/5), strides (1/2), pooling (max/average) and input sizes drawn from a seeded
   generator and kept where the MACs fall in [10k, 20M], spread over the decades.
2. ``build(spec)``: the torch module of a spec (NHWC input, permuted inside, so no input TRANSPOSE),
   converted with the project's own int8-full TFLite path (export/formats/tflite_format.convert:
   LiteRT Torch with a PT2E static quantizer, calibrated on seeded normal data). Cached under
   ``build/zoo/models/<spec key>.tflite``; the key hashes the spec, ``GENERATOR`` and the
   litert-torch/torch versions.
3. ``emulate_all(cores)``: each file built into firmware and run under QEMU on each core
   (devices/firmware.emulate, byte-exact against the host TFLM interpreter on ``N_ROWS`` random
   rows), its instructions counted and turned into cycles by the core's timing table. Cached as
   ``build/zoo/emulated/<core>/<file sha>.json``.

benchmarks/ may import the export stage; devices/zoo_fit.py (the estimator) reads only the files
and the cycle records, so devices/ stays free of export/.

4. ``zoo_specs('fresh')``: a second zoo (``FRESH``: own generator name and seed, 24 models, same
   families and limits) that no estimator choice has seen, for the out-of-sample check of the fit.

Run: ``python -m benchmarks.zoo_models [--zoo v1|fresh] [--cores cortex-m4f,...] [--limit N]`` builds
and emulates (``nice -n 10`` it: the sweep is minutes of CPU).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ZOO = ROOT / "build" / "zoo"
GENERATOR = "tinyship-zoo-v1"
SEED = 37
N_MODELS = 48
MIN_MACS, MAX_MACS = 10_000, 20_000_000
DECADES = (  # MAC range of each round of the six families
    (1e4, 1e5), (1e5, 1e6), (1e6, 5e6), (5e6, 1e7), (1e4, 1e5), (1e5, 1e6), (1e6, 5e6), (1e7, 2e7),
)  # fmt: skip
FAMILIES = ("convnet", "dsnet", "mlp", "resnet", "inception", "mixed")
CORES = ("cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55")
# The M55 board (mps3-an547) links code and model into its 512 KiB ITCM; TFLM + CMSIS-NN code is
# ~90 KB there (measured: a 615 KB model overflowed it by 180 KB), so every zoo model keeps its
# weights under this, to run on all four cores.
MAX_WEIGHT_BYTES = 360_000
# Its 512 KiB DTCM holds the arena (~400 KB after stack and heap): a layer's input + output stay
# under this, leaving room for the tensors a residual or concatenation keeps alive.
MAX_ACT_BYTES = 250_000
# A second zoo no estimator choice has seen (issue 37): the same families, limits and MAC range,
# another generator name and seed, four rounds of the six families over 10k-20M MACs. The
# estimator fitted on the v1 zoo is scored on it (benchmarks/estimator_validation.py).
FRESH = {
    "generator": "tinyship-zoo-fresh-v1", "seed": 3737, "n": 24, "prefix": "fresh",
    "decades": ((1e4, 1e5), (1e5, 1e6), (1e6, 1e7), (1e7, 2e7)),
}  # fmt: skip
ZOOS = ("v1", "fresh")
N_ROWS = 4  # random rows per file for the byte-exact check (the counted run uses the first)
N_CLASSES = 10


def _layers(fam: str, rng: np.random.Generator, c: int) -> list[list]:
    """A random layer list of family ``fam`` for ``c`` input channels (see ``build`` for the ops)."""
    w = int(rng.choice([8, 12, 16, 24, 32, 48, 64]))
    k = int(rng.choice([1, 3, 3, 5]))
    depth = int(rng.integers(2, 6))
    pool = str(rng.choice(["maxpool", "avgpool"]))
    if fam == "mlp":
        hidden = [
            int(rng.choice([16, 32, 64, 128, 256, 512])) for _ in range(int(rng.integers(1, 4)))
        ]
        return [["flatten"], *[["fc", h] for h in hidden]]
    out: list[list] = [["conv", w, int(rng.choice([3, 5])), int(rng.choice([1, 2]))]]
    for i in range(depth):
        stride = 2 if i % 2 == 1 and rng.random() < 0.6 else 1
        w2 = int(min(256, w * (2 if stride == 2 else 1)))
        if fam == "convnet":
            out.append(["conv", w2, k, stride])
        elif fam == "dsnet":
            out += [["dw", int(rng.choice([3, 5])), stride], ["pw", w2]]
        elif fam == "resnet":
            out += [["conv", w2, 3, stride], ["res", 3]]
        elif fam == "inception":
            half = max(4, w2 // 2)
            out.append(["cat", half, w2 - half, stride])
        else:  # mixed: one of each kind in turn
            out.append(
                [["dw", 3, stride], ["conv", w2, k, stride], ["cat", w2 // 2, w2 // 2, stride]][
                    i % 3
                ]
            )
            if i % 3 == 0:
                out.append(["pw", w2])
            if i == 1:
                out.append(["res", 3])
        if fam != "mlp" and i == 0 and rng.random() < 0.5:
            out.append([pool, 2, 2])
        w = w2
    out.append(["gap"])
    if rng.random() < 0.5 or fam == "mixed":
        out.append(["fc", int(rng.choice([32, 64, 128]))])
    return out


def weight_bytes(inp: list[int], layers: list[list]) -> int:
    """int8 weights + int32 biases of a spec: what the firmware's flash must hold beside the code."""
    c, total = inp[2], 0
    for layer in layers:
        op = layer[0]
        if op == "conv":
            total, c = total + layer[1] * (layer[2] ** 2 * c + 4), layer[1]
        elif op == "dw":
            total += c * (layer[1] ** 2 + 4)
        elif op == "pw":
            total, c = total + layer[1] * (c + 4), layer[1]
        elif op == "cat":
            total, c = total + layer[1] * (c + 4) + layer[2] * (9 * c + 4), layer[1] + layer[2]
        elif op == "res":
            total += c * (c * layer[1] ** 2 + 4)
        elif op == "flatten":
            c = inp[0] * inp[1] * inp[2]
        elif op == "fc":
            total, c = total + layer[1] * (c + 4), layer[1]
    return total + N_CLASSES * (c + 4)


def peak_act_bytes(inp: list[int], layers: list[list]) -> int:
    """The largest int8 input + output of one layer of a spec (a lower bound of its arena)."""
    peak = 0
    for i in range(len(layers)):
        _, before = _walk(inp, layers[:i])
        _, after = _walk(inp, layers[: i + 1])
        peak = max(peak, before[0] * before[1] * before[2] + after[0] * after[1] * after[2])
    return peak


def _walk(inp: list[int], layers: list[list]) -> tuple[int, list[int]]:
    """MACs of a spec and its output shape (H, W, C), computed as the export will lay it out."""
    h, w, c = inp
    macs = 0
    for layer in layers:
        op = layer[0]
        if op in ("conv", "dw", "pw", "cat"):
            k, s = (
                (layer[2], layer[3])
                if op == "conv"
                else (layer[1], layer[2])
                if op == "dw"
                else (1, 1)
            )
            if op == "cat":
                s = layer[3]
            h, w = math.ceil(h / s), math.ceil(w / s)
            if op == "conv":
                macs += h * w * layer[1] * k * k * c
                c = layer[1]
            elif op == "dw":
                macs += h * w * c * k * k
            elif op == "pw":
                macs += h * w * layer[1] * c
                c = layer[1]
            else:  # cat: a 1x1 branch and a 3x3 branch, both strided
                macs += h * w * c * (layer[1] + 9 * layer[2])
                c = layer[1] + layer[2]
        elif op == "res":
            macs += h * w * c * c * layer[1] * layer[1]
        elif op in ("maxpool", "avgpool"):
            h, w = max(1, h // layer[2]), max(1, w // layer[2])
        elif op in ("gap", "flatten"):
            c, h, w = c * (h * w if op == "flatten" else 1), 1, 1
        elif op == "fc":
            macs += c * layer[1]
            c = layer[1]
    return macs + c * N_CLASSES, [h, w, c]


def specs(
    n: int = N_MODELS,
    seed: int = SEED,
    decades: tuple = DECADES,
    prefix: str = "zoo",
    generator: str | None = None,
) -> list[dict]:
    """``n`` zoo specs, the same on every call: family round-robin, MACs cycling over ``decades``;
    ``generator`` (another zoo than v1) is kept in each spec, so it enters the file's key."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        fam = FAMILIES[i % len(FAMILIES)]
        lo, hi = decades[(i // len(FAMILIES)) % len(decades)]
        if fam == "mlp":  # an FC MAC is a weight byte: MLPs stop where the weights stop fitting
            lo, hi = min(lo, MAX_WEIGHT_BYTES / 4), min(hi, MAX_WEIGHT_BYTES)
        for _ in range(10_000):
            size = int(rng.choice([8, 12, 16, 24, 32, 40, 48, 64, 96]))
            c = int(rng.choice([1, 3, 4, 8]))
            inp = [size, size if rng.random() < 0.7 else max(4, size // 2), c]
            layers = _layers(fam, rng, c)
            macs, _ = _walk(inp, layers)
            fits = weight_bytes(inp, layers) <= MAX_WEIGHT_BYTES
            fits = fits and peak_act_bytes(inp, layers) <= MAX_ACT_BYTES
            if fits and lo <= macs < hi and MIN_MACS <= macs <= MAX_MACS:
                break
        else:
            raise RuntimeError(f"zoo spec {i} ({fam}) found no size in [{lo:g}, {hi:g}) MACs")
        spec = {"name": f"{prefix}{i:02d}-{fam}", "family": fam, "input": inp, "layers": layers,
                "macs": macs}  # fmt: skip
        out.append(spec if generator is None else {**spec, "generator": generator, "seed": seed})
    return out


def zoo_specs(zoo: str = "v1") -> list[dict]:
    """The specs of a named zoo: 'v1' (``GENERATOR``, fitted on) or 'fresh' (``FRESH``, scored on)."""
    if zoo == "v1":
        return specs()
    if zoo == "fresh":
        f = FRESH
        return specs(f["n"], f["seed"], f["decades"], f["prefix"], f["generator"])
    from ground.errors import UserError

    raise UserError(f"zoo {zoo!r} is not one of {', '.join(ZOOS)}")


def spec_key(spec: dict) -> str:
    """Content key of a spec's file: the spec, the generator and the converter versions."""
    from importlib import metadata

    gen, seed = spec.get("generator", GENERATOR), spec.get("seed", SEED)
    parts = [spec, gen, seed, metadata.version("torch"), metadata.version("litert-torch")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def module(spec: dict):
    """The torch module of ``spec`` (seeded weights): NHWC in, logits out; ReLU after each layer."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Cat(nn.Module):
        def __init__(self, c: int, a: int, b: int, s: int) -> None:
            super().__init__()
            self.one, self.three = nn.Conv2d(c, a, 1, s), nn.Conv2d(c, b, 3, s, 1)

        def forward(self, x):
            return torch.cat([F.relu(self.one(x)), F.relu(self.three(x))], 1)

    class Res(nn.Module):
        def __init__(self, c: int, k: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c, c, k, 1, k // 2)

        def forward(self, x):
            return F.relu(self.conv(x)) + x

    class Zoo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            h, w, c = spec["input"]
            self.flat_input = spec["layers"][0][0] == "flatten"
            mods: list[nn.Module] = []
            for layer in spec["layers"]:
                op = layer[0]
                if op == "conv":
                    mods += [nn.Conv2d(c, layer[1], layer[2], layer[3], layer[2] // 2), nn.ReLU()]
                    c = layer[1]
                elif op == "dw":
                    mods += [
                        nn.Conv2d(c, c, layer[1], layer[2], layer[1] // 2, groups=c),
                        nn.ReLU(),
                    ]
                elif op == "pw":
                    mods += [nn.Conv2d(c, layer[1], 1), nn.ReLU()]
                    c = layer[1]
                elif op == "cat":
                    mods.append(Cat(c, layer[1], layer[2], layer[3]))
                    c = layer[1] + layer[2]
                elif op == "res":
                    mods.append(Res(c, layer[1]))
                elif op == "maxpool":
                    mods.append(nn.MaxPool2d(layer[1], layer[2]))
                elif op == "avgpool":
                    mods.append(nn.AvgPool2d(layer[1], layer[2]))
                elif op == "gap":
                    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
                elif op == "flatten":
                    mods.append(nn.Flatten())
                    c = h * w * c
                elif op == "fc":
                    mods += [nn.Linear(c, layer[1]), nn.ReLU()]
                    c = layer[1]
            mods.append(nn.Linear(c, N_CLASSES))
            self.body = nn.Sequential(*mods)

        def forward(self, x):
            return self.body(x if self.flat_input else x.permute(0, 3, 1, 2))

    torch.manual_seed(SEED)
    return Zoo().eval()


def build(spec: dict, folder: Path = ZOO / "models") -> Path:
    """The int8-full .tflite of ``spec`` (cached by ``spec_key``), made by the export stage's converter."""
    import torch

    from export.formats.tflite_format import convert
    from ground import atomic

    out = folder / f"{spec['name']}-{spec_key(spec)}.tflite"
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    m = module(spec)
    cal = np.random.default_rng(SEED).standard_normal((64, *spec["input"])).astype(np.float32)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(m, (torch.from_numpy(cal[:2]),), dynamic_shapes=({0: batch},))
    tmp = folder / f".{out.name}.tmp"
    convert(program, {"input": {"layout": "NHWC"}}, cal, "int8-full", tmp)
    atomic.atomic_write_bytes(out, tmp.read_bytes())
    tmp.unlink()
    return out


def emulate_one(path: Path, core_name: str) -> dict:
    """The emulated cycles of one zoo file on one core (cached by the file's sha256 and the
    firmware library's key): instructions, cycles, byte-exact check and wall time."""
    from devices.firmware.cores import get as get_core
    from devices.firmware.emulate import emulate
    from devices.firmware.library import folder as lib_folder
    from devices.firmware.timing import MODEL_NAME
    from devices.firmware.tree import tflm_dir
    from ground import atomic, rundir

    core = get_core(core_name)
    sha = rundir.sha256_file(path)
    lib = lib_folder(tflm_dir(), core).name
    cache = ZOO / "emulated" / core_name / f"{sha[:16]}.json"
    if cache.is_file():
        doc = json.loads(cache.read_text())
        if doc.get("library") == lib and doc.get("timing") == MODEL_NAME:
            return doc
    t0 = time.monotonic()
    rec, _ = emulate(path, core, n_random=N_ROWS)
    doc = {
        "file": path.name,
        "sha256": sha,
        "core": core_name,
        "library": lib,
        "timing": MODEL_NAME,
        "instructions": rec.get("instructions", {}).get("instructions"),
        "cycles": (rec.get("cycles") or {}).get("value"),
        "not_counted": rec.get("instructions", {}).get("not_counted"),
        "by_function": rec.get("instructions", {}).get("by_function"),
        "bit_exact": rec["bit_exact"],
        "versions": rec["versions"],
        "wall_s": round(time.monotonic() - t0, 2),
    }
    atomic.atomic_write_json(cache, doc)
    return doc


def emulate_all(
    cores: tuple[str, ...] = CORES, limit: int | None = None, log=print, zoo: str = "v1"
) -> list[dict]:
    """Every file of zoo ``zoo`` on every core: [{name, family, macs, file, core, cycles, ...}],
    cached; a file a core refuses is logged and left out."""
    from ground.errors import UserError

    rows = []
    for spec in zoo_specs(zoo)[:limit]:
        t0 = time.monotonic()
        path = build(spec)
        built = time.monotonic() - t0
        for core in cores:
            try:
                doc = emulate_one(path, core)
            except UserError as exc:  # said and skipped: the sweep goes on
                log(f"{spec['name']} on {core}: not emulated: {str(exc)[:300]}")
                continue
            rows.append({"name": spec["name"], "family": spec["family"], "macs": spec["macs"],
                         "path": str(path), **doc})  # fmt: skip
            log(f"{spec['name']:18s} {spec['macs']:>10,} MACs {core:11s} cycles {doc['cycles']} "
                f"exact {doc['bit_exact']['identical']} ({built:.1f} s build, {doc['wall_s']} s emulate)")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.zoo_models", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--cores", default=",".join(CORES), help="comma-separated (default: all four)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N specs")
    ap.add_argument("--zoo", default="v1", choices=ZOOS, help="v1 (fitted on) or fresh (scored on)")
    ap.add_argument(
        "--build-only", action="store_true", help="make the .tflite files, emulate none"
    )
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    if a.build_only:
        for spec in zoo_specs(a.zoo)[: a.limit]:
            print(spec["name"], build(spec), flush=True)
    else:
        cores = tuple(c for c in a.cores.split(",") if c)
        emulate_all(cores, a.limit, log=lambda s: print(s, flush=True), zoo=a.zoo)
    print(f"zoo sweep: {time.monotonic() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
