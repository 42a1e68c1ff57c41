"""The shipped C front-end's cycles on each emulated core, and the cost model fitted on them.

Issues 35-37: devices/frontend.py costed the front-end with an assumed flop rate, 9x under what the
C front-end (devices/frontend_c/) takes on the emulated Cortex-M4F. This benchmark measures the C
instead, over a grid of front-end configurations, on every core the firmware builds it for:

1. each configuration is the recipe's front-end (recipes/kws_fsdd.yaml) with some of n_fft, hop,
   n_mels, features, n_mfcc, clip_seconds and utterance_norm changed; its card comes from the
   Python front-end (distill/audio_frontend.py), the firmware's model is a tiny int8 file with the
   right input tensor (one dense layer over the map: its cost is left out by symbol), made by
   the export stage's own int8-full converter and calibrated on the configuration's features;
2. one FSDD clip (``CLIP``, cropped or padded to the window) through the firmware: its features are
   checked against the Python front-end's, then two logged runs count the instructions of one
   front-end pass per part by symbol (devices/firmware/frontend.py ``count_frontend``) and the
   core's timing table turns them into cycles per frame and per window;
3. per core, non-negative least squares on the relative error fits the frame terms and the window
   terms of devices/frontend.py (``frame_terms``, ``window_terms``: the same functions the
   estimate uses) on the ``FIT`` configurations, and the error is stated on those and on the
   ``HELD_OUT`` ones, which the fit never saw.

``--write`` also writes the committed table devices/frontend_cycles.json (commit, machine, date,
command, toolchain versions, coefficients, errors and every measurement). Measurements are cached
under build/frontend_cycles/ by what they are made of (C sources, tables, library, timing model).

Run: ``nice -n 10 .venv/bin/python -m benchmarks.frontend_cycles [--cores cortex-m4f,...] [--write]``
The PXA270 is not calibrated: it has no FPU, so its front-end runs in libgcc's soft-float helpers,
which the by-symbol count cannot attribute to the frame or the window (devices/frontend.py scales
the reference core for it, as for every uncalibrated core, and says so).
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORK = ROOT / "build" / "frontend_cycles"
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
CLIP = "3_theo_0.wav"  # one FSDD test-split clip (0.5 s of speech): the counted run's input
SPREAD_CLIPS = ("0_george_0.wav", "7_jackson_2.wav", "9_yweweler_4.wav")  # data dependence check
CAL_CLIPS = 24  # clips whose features calibrate each tiny model's int8 input
CORES = ("cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55")
REFERENCE = "cortex-m4f"  # scaled for cores not calibrated (devices/frontend.py)
REFERENCE_DEVICE = "cortex-m4f-stm32l4r5"  # its fp32 MACs/cycle figure
# n_fft, hop, n_mels, features, n_mfcc, clip_seconds, utterance_norm over the recipe's front-end
FIT = {
    "recipe": {},
    "n512_h256": {"n_fft": 512, "hop": 256},
    "n128_h80_m20_c10": {"n_fft": 128, "hop": 80, "n_mels": 20, "n_mfcc": 10, "utterance_norm": False},
    "n1024_h512_m64_c20": {"n_fft": 1024, "hop": 512, "n_mels": 64, "n_mfcc": 20},
    "logmel_h128_m20": {"features": "logmel", "hop": 128, "n_mels": 20, "utterance_norm": False},
    "logmel_n512_m64_half": {"features": "logmel", "n_fft": 512, "n_mels": 64, "clip_seconds": 0.5},
    "h80_c20_half": {"hop": 80, "n_mfcc": 20, "clip_seconds": 0.5, "utterance_norm": False},
    "n512_h400_m20_c10": {"n_fft": 512, "hop": 400, "n_mels": 20, "n_mfcc": 10, "utterance_norm": False},
    "logmel_n128_h64_m32_half": {"features": "logmel", "n_fft": 128, "hop": 64, "n_mels": 32,
                                 "clip_seconds": 0.5},
    "n1024_h256_half": {"n_fft": 1024, "hop": 256, "clip_seconds": 0.5, "utterance_norm": False},
    "n512_h128_m32_c16": {"n_fft": 512, "hop": 128, "n_mels": 32, "n_mfcc": 16},
    "h200_m64": {"hop": 200, "n_mels": 64},
}  # fmt: skip
HELD_OUT = {
    "logmel_m32": {"features": "logmel", "n_mels": 32},
    "n512_h320_norm_off": {"n_fft": 512, "hop": 320, "utterance_norm": False},
    "logmel_n1024_h400_off": {"features": "logmel", "n_fft": 1024, "hop": 400, "utterance_norm": False},
    "n128_h100_m20_half": {"n_fft": 128, "hop": 100, "n_mels": 20, "clip_seconds": 0.5},
    "h256_c13": {"hop": 256},
    "n512_h160_m48_c24": {"n_fft": 512, "hop": 160, "n_mels": 48, "n_mfcc": 24},
}  # fmt: skip


def recipe_frontend() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "recipes" / "kws_fsdd.yaml").read_text())["data"]["frontend"]


def frontend(overrides: dict):
    from distill.audio_frontend import FrontEnd

    return FrontEnd.from_section({**recipe_frontend(), **overrides})


def pcm(fe, name: str = CLIP) -> np.ndarray:
    """An FSDD clip fixed to the window as int16 PCM (what the firmware reads)."""
    from distill.audio_clips import read_wav

    wav = fe.fix_length(read_wav(FSDD / name, fe.sample_rate))
    return np.round(wav * 32768.0).astype(np.int16)


def model_file(fe, card: dict) -> Path:
    """A tiny int8-full .tflite whose input is the front-end's [1, 1, coefficients, frames] map."""
    import torch

    from devices import frontend_c
    from export.formats.tflite_format import convert
    from ground import atomic

    out = WORK / "models" / f"{frontend_c.digest(card)}.tflite"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in FSDD.glob("*.wav"))[:: 3000 // CAL_CLIPS][:CAL_CLIPS]
    waves = np.stack([pcm(fe, n) / 32768.0 for n in names])
    cal = fe(waves).astype(np.float32)  # [n, 1, coefficients, frames]
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):  # a dense layer first keeps the input int8 (a MEAN first did not)
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(card["coefficients"] * card["frames"], 4)

        def forward(self, x):
            return self.fc(x.flatten(1))

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(Tiny().eval(), (torch.from_numpy(cal[:2]),),
                                  dynamic_shapes=({0: batch},))  # fmt: skip
    tmp = out.parent / f".{out.name}.tmp"
    convert(program, {"input": {"layout": "NCHW"}}, cal, "int8-full", tmp)
    atomic.atomic_write_bytes(out, tmp.read_bytes())
    tmp.unlink()
    return out


def _emulate(tflite: Path, core_name: str, fe, card: dict, clips: tuple[str, ...]) -> dict:
    """Build, run ``clips`` once (features against Python's), count each; cycles per part."""
    from devices.firmware import cores, emulate, frontend, model_ops, timing

    core = cores.get(core_name)
    fw, lib = emulate.build(tflite, core, model_ops.read(tflite), frontend=card)
    rows = [pcm(fe, n) for n in clips]
    got = frontend.run_clips(fw, core, rows, card)
    want = fe(np.stack([r / 32768.0 for r in rows]))[:, 0]
    frames, out = int(card["frames"]), []
    for row in rows:
        c = frontend.count_frontend(fw, core, row)
        cyc = {k: timing.cycles(core.name, c[k], None).cycles for k in ("frame", "window", "clip")}
        out.append({"frame_cycles": cyc["frame"] / frames, "window_cycles": cyc["window"],
                    "clip_cycles": cyc["clip"], "frame_instructions": c["frame"].instructions / frames,
                    "window_instructions": c["window"].instructions})  # fmt: skip
    return {"library": lib.key, "per_clip": out,
            "features_max_abs_diff": float(np.abs(got.features - want).max()),
            "state_bytes": got.run.values.get("frontend_state_bytes")}  # fmt: skip


def measure(name: str, overrides: dict, core_name: str, clips: tuple[str, ...] = (CLIP,)) -> dict:
    """One configuration on one core (cached by the C, its tables, the clips, the core's library
    and the timing model): mean cycles and instructions per frame and per window over ``clips``."""
    import hashlib

    from devices import frontend_c
    from devices.firmware import cores, library, timing, tree
    from ground import atomic

    fe = frontend(overrides)
    card = fe.card()
    key = frontend_c.digest(card) + "-" + hashlib.sha256(" ".join(clips).encode()).hexdigest()[:8]
    lib = library.folder(tree.tflm_dir(), cores.get(core_name)).name
    cache = WORK / "emulated" / core_name / f"{key}.json"
    if cache.is_file():
        doc = json.loads(cache.read_text())
        if doc.get("library") == lib and doc.get("timing") == timing.MODEL_NAME:
            return {**doc, "config": name}
    t0 = time.monotonic()
    got = _emulate(model_file(fe, card), core_name, fe, card, clips)
    per = (card.get("ops_per_inference") or {}).get("per_frame") or {}
    keep = ("sample_rate", "n_fft", "hop", "n_mels", "features", "n_mfcc", "coefficients",
            "frames", "clip_samples", "utterance_norm")  # fmt: skip
    doc = {
        "config": name, "core": core_name, "library": lib, "timing": timing.MODEL_NAME,
        "clips": list(clips),
        "frontend": {**{k: card[k] for k in keep},
                     "ops_per_inference": {"per_frame": {"filterbank_macs": per["filterbank_macs"]}}},
        "samples_per_frame": card["clip_samples"] / card["frames"],
        **{k: float(np.mean([r[k] for r in got["per_clip"]])) for k in got["per_clip"][0]},
        "per_clip": got["per_clip"], "features_max_abs_diff": got["features_max_abs_diff"],
        "state_bytes": got["state_bytes"], "wall_s": round(time.monotonic() - t0, 1),
    }  # fmt: skip
    atomic.atomic_write_json(cache, doc)
    return doc


# ---- the fit: non-negative least squares on the relative error, per core and part


def _design(rows: list[dict], part: str) -> tuple[np.ndarray, np.ndarray]:
    from devices.frontend import FRAME_TERMS, WINDOW_TERMS, frame_terms, window_terms

    if part == "frame":
        x = [
            [frame_terms(r["frontend"], r["samples_per_frame"])[t] for t in FRAME_TERMS]
            for r in rows
        ]
        y = [r["frame_cycles"] for r in rows]
    else:
        x = [[window_terms(r["frontend"])[t] for t in WINDOW_TERMS] for r in rows]
        y = [r["window_cycles"] for r in rows]
    return np.array(x, float), np.array(y, float)


def fit(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Coefficients (cycles per unit of each term) minimizing the squared relative error, >= 0."""
    from scipy.optimize import nnls

    from devices.frontend import FRAME_TERMS, WINDOW_TERMS

    out = {}
    for part, names in (("frame", FRAME_TERMS), ("window", WINDOW_TERMS)):
        x, y = _design(rows, part)
        coef, _ = nnls(x / y[:, None], np.ones(len(y)))
        out[part] = {t: round(float(c), 4) for t, c in zip(names, coef)}
    return out


def scored(rows: list[dict], core: str, coefs: dict) -> list[dict]:
    """Each row's estimate (devices/frontend.py ``cycles``, this table's coefficients) against its
    emulated cycles: relative errors per frame, per window, per streaming inference (frame +
    window) and per clip (every frame + window: ``window`` mode; its measured figure includes
    the clip helper's own loop, which the model leaves out)."""
    from devices.frontend import cycles

    doc = {"cores": {core: coefs}}
    out = []
    for r in rows:
        frame, window = cycles(r["frontend"], core, r["samples_per_frame"], doc)
        est = {"frame": frame, "window": window, "streaming": frame + window,
               "clip": r["frontend"]["frames"] * frame + window}  # fmt: skip
        meas = {"frame": r["frame_cycles"], "window": r["window_cycles"],
                "streaming": r["frame_cycles"] + r["window_cycles"], "clip": r["clip_cycles"]}  # fmt: skip
        out.append({"config": r["config"], **{f"{k}_error": est[k] / meas[k] - 1 for k in est}})
    return out


def worst(scores: list[dict]) -> dict[str, float]:
    keys = ("frame", "window", "streaming", "clip")
    return {k: round(max(abs(s[f"{k}_error"]) for s in scores), 4) for k in keys}


# ---- the sweep, the report and the table


def sweep(cores: tuple[str, ...], log=print) -> dict[str, dict[str, list[dict]]]:
    """Every configuration on every core: {core: {"fit": [...], "held_out": [...]}}."""
    rows: dict[str, dict[str, list[dict]]] = {}
    for core in cores:
        for group, configs in (("fit", FIT), ("held_out", HELD_OUT)):
            for name, over in configs.items():
                r = measure(name, over, core)
                rows.setdefault(core, {}).setdefault(group, []).append(r)
                log(f"{core:11s} {group:8s} {name:26s} frame {r['frame_cycles']:>10,.0f}  window "
                    f"{r['window_cycles']:>9,.0f}  features diff {r['features_max_abs_diff']:.1e} "
                    f"({r['wall_s']} s)", flush=True)  # fmt: skip
    return rows


def calibrate(rows: dict[str, dict[str, list[dict]]]) -> dict[str, dict]:
    """Per core: coefficients fitted on ``fit``, scored on ``fit`` and ``held_out``."""
    from devices.firmware import timing

    out = {}
    for core, g in rows.items():
        coefs = fit(g["fit"])
        sf, sh = scored(g["fit"], core, coefs), scored(g["held_out"], core, coefs)
        out[core] = {
            **coefs,
            "cycle_source": timing.TABLES[core][2],
            "error": {"fit": worst(sf), "held_out": worst(sh),
                      "note": "max |estimate / emulated - 1| over the configurations"},
            "configurations": {"fit": len(sf), "held_out": len(sh)},
            "_scores": {"fit": sf, "held_out": sh},
        }  # fmt: skip
    return out


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def lines(rows: dict, cal: dict, spread: dict | None) -> list[str]:
    from benchmarks.common import table
    from devices.frontend import FRAME_TERMS, WINDOW_TERMS

    out = ["## Coefficients (cycles per unit of each term)", "",
           table(["core", *[f"frame: {t}" for t in FRAME_TERMS], *[f"window: {t}" for t in WINDOW_TERMS]],
                 [[c, *[v["frame"][t] for t in FRAME_TERMS], *[v["window"][t] for t in WINDOW_TERMS]]
                  for c, v in cal.items()]),
           "## Error: max |estimate / emulated - 1|", "",
           table(["core", "set", "configs", "frame", "window", "streaming (frame + window)",
                  "clip (every frame + window)"],
                 [[c, s, v["configurations"][s], *[f"{100 * v['error'][s][k]:.1f}%"
                   for k in ("frame", "window", "streaming", "clip")]]
                  for c, v in cal.items() for s in ("fit", "held_out")]),
           "## Every configuration", ""]  # fmt: skip
    body = []
    for core, g in rows.items():
        for s in ("fit", "held_out"):
            for r, e in zip(g[s], cal[core]["_scores"][s]):
                f = r["frontend"]
                body.append([core, s, r["config"], f["n_fft"], f["hop"], f["n_mels"], f["features"],
                             f["coefficients"], f["frames"], f["utterance_norm"],
                             round(r["frame_cycles"]), round(r["window_cycles"]),
                             _pct(e["frame_error"]), _pct(e["window_error"]),
                             _pct(e["streaming_error"]), _pct(e["clip_error"])])  # fmt: skip
    out.append(table(["core", "set", "config", "n_fft", "hop", "n_mels", "features", "coeffs", "frames",
                      "norm", "frame cyc", "window cyc", "frame err", "window err", "stream err",
                      "clip err"], body))  # fmt: skip
    if spread:
        base = rows[REFERENCE]["fit"][0]
        out += ["## Data dependence (the recipe's front-end on the reference core, other clips)", "",
                table(["clip", "frame cycles", "vs " + CLIP, "window cycles", "vs " + CLIP],
                      [[c, round(p["frame_cycles"]), _pct(p["frame_cycles"] / base["frame_cycles"] - 1),
                        round(p["window_cycles"]), _pct(p["window_cycles"] / base["window_cycles"] - 1)]
                       for c, p in zip(spread["clips"], spread["per_clip"])])]  # fmt: skip
    return out


def _spread(rows: dict, spread: dict) -> dict:
    """The recipe's front-end on other clips: cycles per part and the largest relative change
    from the counted clip's (how far a clip's data moves the figures the model was fitted on)."""
    base = rows[REFERENCE]["fit"][0]
    rel = {k: max(abs(p[f"{k}_cycles"] / base[f"{k}_cycles"] - 1) for p in spread["per_clip"])
           for k in ("frame", "window")}  # fmt: skip
    return {"config": base["config"], "core": REFERENCE, "clips": spread["clips"],
            "per_clip": spread["per_clip"], "max": {k: round(v, 4) for k, v in rel.items()}}  # fmt: skip


def table_doc(rows: dict, cal: dict, spread: dict | None, commit: str, command: str) -> dict:
    """devices/frontend_cycles.json: what devices/frontend.py reads."""
    from benchmarks.common import machine
    from devices.catalog import load_catalog
    from devices.firmware import emulate

    m = machine()
    ref = load_catalog().get(REFERENCE_DEVICE)
    return {
        "schema": "tinyship.frontend_cycles/1",
        "generated": {
            "commit": commit, "machine": f"{m['cpu']}, {m['cores']} cores",
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "command": command,
            "versions": emulate.versions("none: features checked against distill's Python front-end"),
            "clip": f"FSDD {CLIP}, fixed to each configuration's window",
            "compiled": "-Os, the firmware's flags per core (devices/firmware/link.py, cores.py)",
        },
        "reference": {"core": REFERENCE, "fp32_macs_per_cycle": ref.macs_per_cycle("fp32"),
                      "source": f"catalog {REFERENCE_DEVICE} fp32_macs_per_cycle"},
        "cores": {c: {k: v for k, v in x.items() if not k.startswith("_")} for c, x in cal.items()},
        "spread": None if not spread else _spread(rows, spread),
        "measurements": [{**{k: r[k] for k in ("config", "core", "frontend", "samples_per_frame",
                                               "frame_cycles", "window_cycles", "clip_cycles",
                                               "frame_instructions", "window_instructions")}, "set": s}
                         for g in rows.values() for s in ("fit", "held_out") for r in g[s]],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmarks import common
    from devices.frontend import CYCLES_FILE, check_table

    ap = argparse.ArgumentParser(prog="python -m benchmarks.frontend_cycles", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--cores", default=",".join(CORES), help="comma-separated firmware cores")
    ap.add_argument("--write", action="store_true", help="also write devices/frontend_cycles.json")
    ap.add_argument("--out-dir", type=Path, default=common.RESULTS)
    a = ap.parse_args(argv)
    cores = tuple(c.strip() for c in a.cores.split(",") if c.strip())
    rep = common.Report("frontend_cycles", "The C front-end's cycles on the emulated cores, and the "
                        "cost model fitted on them (issues 35-37)", common.command_line("frontend_cycles"),
                        {"cores": ",".join(cores), "fit": len(FIT), "held_out": len(HELD_OUT),
                         "clip": CLIP})  # fmt: skip
    rows = sweep(cores)
    spread = measure("recipe", {}, REFERENCE, SPREAD_CLIPS) if REFERENCE in cores else None
    cal = calibrate(rows)
    rep.add("\n".join(lines(rows, cal, spread)))
    doc = table_doc(rows, cal, spread, rep.commit or "not recorded", rep.command)
    rep.data = {k: doc[k] for k in ("generated", "reference", "cores", "spread", "measurements")}
    rep.write(a.out_dir)
    if a.write:
        return common.write_checked(CYCLES_FILE, doc, check_table(doc), "table")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
