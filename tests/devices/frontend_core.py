"""The keyword spotter's C front-end against the Python one, on the host and on the emulated M4F.

Host pipeline (what the card's figures come from): each FSDD clip read as the audio loader reads it,
padded or cropped by ``FrontEnd.fix_length``, features by the Python ``FrontEnd`` of the card,
``q = round(x / scale) + zero_point`` (ground.tflm.quantize), and the host LiteRT interpreter on the
int8 file. C front-end: the same clips as int16 PCM through ``tinyship_fe_clip`` (host gcc, ctypes)
or, on the core, through the firmware of devices/firmware/frontend.py (PCM in, labels out).

Used by tests/devices/test_frontend_c.py, and run by hand for the full test split:

    .venv/bin/python tests/devices/frontend_core.py --run build/kwsD [--clips 300] [--no-count]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devices.frontend_host import HostFrontEnd  # noqa: E402  (the tests' name for it: fc.HostFrontEnd)

FSDD = REPO.parent / "shared" / "data" / "fsdd" / "recordings"
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


def split_clips(root: Path = FSDD, n: int | None = None) -> list[Path]:
    """FSDD's official test split (takes 0-4: 300 clips), sorted; ``n``: evenly spaced among them."""
    paths = sorted(p for p in root.glob("*.wav") if (m := _NAME.match(p.name)) and int(m[3]) <= 4)
    if n is not None and n < len(paths):
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    return paths


def read_pcm(path: Path, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(float samples as the audio loader reads them, the same as int16 PCM)."""
    from distill.audio_clips import read_wav

    wav = read_wav(path, sample_rate)
    pcm = np.round(wav * 32768.0).astype(np.int16)
    assert np.array_equal(pcm / 32768.0, wav), f"{path} is not plain 16-bit mono PCM"
    return wav, pcm


@dataclass
class Host:
    """The host pipeline's view of some clips."""

    pcm: list[np.ndarray]
    labels: np.ndarray
    features: np.ndarray  # [n, coeffs, frames] float32, the Python front-end's
    inputs: np.ndarray  # [n, coeffs * frames] int8
    outputs: dict[str, np.ndarray]  # [n, classes] int8 outputs of LiteRT per kernel set (RUNTIMES)


# LiteRT's default (its XNNPACK delegate) and its own built-in kernels without that delegate: the
# delegate's int8 requantization rounds some logits 1 LSB away from TFLite's reference kernels
RUNTIMES = {"litert_xnnpack": "BUILTIN", "litert_builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def litert_outputs(tflite: Path, inputs: np.ndarray, resolver: str) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = getattr(OpResolverType, resolver)
    it = Interpreter(model_path=str(tflite), experimental_op_resolver_type=kind)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for row in inputs:
        it.set_tensor(i["index"], row.reshape(i["shape"]))
        it.invoke()
        out.append(it.get_tensor(o["index"])[0].copy())
    return np.stack(out)


def int8_spec(run: Path) -> tuple[Path, dict]:
    exports = json.loads((run / "export" / "exports.json").read_text())
    art = next(a for a in exports["artifacts"]
               if a["format"] == "tflite" and a["precision"] == "int8-full")  # fmt: skip
    return run / "export" / art["file"], art["input"]["quantization"]


def host_pipeline(run: Path, paths: list[Path]) -> Host:
    from distill.audio_frontend import FrontEnd
    from ground.tflm import quantize

    card = json.loads((run / "student" / "card.json").read_text())
    fe = FrontEnd.from_card(card["input"]["frontend"])
    tflite, q = int8_spec(run)
    waves, pcm = zip(*(read_pcm(p, fe.sample_rate) for p in paths))
    feats = fe(np.stack([fe.fix_length(w) for w in waves]))[:, 0]
    inputs = quantize(feats, q["scale"], q["zero_point"], "int8").reshape(len(paths), -1)
    outputs = {k: litert_outputs(tflite, inputs, r) for k, r in RUNTIMES.items()}
    labels = np.array([_label(card["labels"], _NAME.match(p.name)[1]) for p in paths])
    return Host(list(pcm), labels, feats, inputs, outputs)


def _label(labels: list, digit: str) -> int:
    """The class of a spoken digit: itself, or ``_unknown_`` when the card holds it out."""
    names = [str(v) for v in labels]
    return names.index(digit) if digit in names else names.index("_unknown_")


def host_c_figures(run: Path, host: Host) -> dict:
    """The C front-end built by the host gcc against the Python front-end on the same clips."""
    card = json.loads((run / "student" / "card.json").read_text())
    _, q = int8_spec(run)
    with tempfile.TemporaryDirectory() as tmp:
        c = HostFrontEnd(card["input"]["frontend"], Path(tmp))
        feats, inputs = [], []
        for pcm in host.pcm:
            c.clip(pcm)
            feats.append(c.features())
            inputs.append(c.window(q["scale"], q["zero_point"]))
    feats, inputs = np.stack(feats), np.stack(inputs)
    return {"clips": len(host.pcm), **_feature_figures(host, feats, inputs)}


def _feature_figures(host: Host, feats: np.ndarray, inputs: np.ndarray) -> dict:
    diff = inputs.astype(int) - host.inputs.astype(int)
    return {
        "features_max_abs_diff": float(np.abs(feats - host.features).max()),
        "int8_inputs_differing_values": int(np.count_nonzero(diff)),
        "int8_inputs_values": int(diff.size),
        "int8_inputs_differing_clips": int(np.count_nonzero(diff.any(axis=1))),
        "int8_inputs_max_abs_diff": int(np.abs(diff).max()),
    }


def core_figures(run: Path, host: Host, count: bool = True) -> dict:
    """The clips' PCM through the C front-end and the model on the emulated Cortex-M4F."""
    from devices.catalog import load_catalog
    from devices.firmware import cores
    from devices.firmware.frontend import emulate_clips

    card = json.loads((run / "student" / "card.json").read_text())
    tflite, _ = int8_spec(run)
    dev = load_catalog().get("cortex-m4f-stm32l4r5")
    ws = dev.emulation["flash_wait_states"]["value"]
    rec, got = emulate_clips(tflite, cores.get("cortex-m4f"), card["input"]["frontend"], host.pcm,
                             dev.clock_hz, ws, count_instructions=count)  # fmt: skip
    outputs = got.outputs.view(np.int8)
    preds = outputs.argmax(axis=1)
    rec.pop("elf")
    vs = {}
    for name, out in host.outputs.items():
        vs[name] = {
            "agreement": float(np.mean(preds == out.argmax(axis=1))),
            "disagreeing_clips": np.flatnonzero(preds != out.argmax(axis=1)).tolist(),
            "byte_identical_outputs": int((outputs == out).all(axis=1).sum()),
            "accuracy": float(np.mean(out.argmax(axis=1) == host.labels)),
        }
    return {
        **_feature_figures(host, got.features, got.inputs),
        "vs_host": vs,
        "accuracy_core": float(np.mean(preds == host.labels)),
        "device": f"cortex-m4f-stm32l4r5 ({dev.clock_hz / 1e6:g} MHz, {ws} flash wait states)",
        "record": rec,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a KWS run dir with an int8 .tflite")
    ap.add_argument("--clips", type=int, default=300, help="test clips, evenly spaced (300: all)")
    ap.add_argument("--no-count", action="store_true", help="skip the instruction counts")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    host = host_pipeline(a.run, split_clips(n=a.clips))
    out = {"host_gcc": host_c_figures(a.run, host)}
    out["core"] = core_figures(a.run, host, count=not a.no_count)
    out["wall_s"] = round(time.monotonic() - t0, 1)
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
