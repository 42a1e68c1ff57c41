"""The keyword spotter's C front-end (devices/frontend_c/): the Python front-end's numbers, streaming,
shipped, compiled for the M4F, and run with the model on the emulated Cortex-M4F (issues 35, 36)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from devices import frontend_c
from distill.audio_frontend import FrontEnd
from ground.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
import frontend_core as fc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no host gcc")
needs_arm = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc (make system-deps)"
)
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CONFIGS = {
    "recipe": {},  # recipes/kws_fsdd.yaml's front-end (below)
    "lifter": {"lifter": 22, "n_mfcc": 20, "n_mels": 32, "sample_rate": 16000, "n_fft": 512, "hop": 256},
    "logmel_start_long_hop": {"features": "logmel", "align": "start", "n_fft": 128, "hop": 200,
                              "utterance_norm": False, "fmin": 100.0, "fmax": 3000.0},
}  # fmt: skip


def _fe(name: str) -> FrontEnd:
    recipe = yaml.safe_load((REPO / "recipes" / "kws_fsdd.yaml").read_text())
    return FrontEnd.from_section({**recipe["data"]["frontend"], **CONFIGS[name]})


def _audio(n: int, seed: int, rate: int = 8000) -> np.ndarray:
    """A deterministic test signal as int16 PCM: a chirp, a burst of noise and a stretch of silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) * (t % 0.7 < 0.4)
    x += 0.05 * rng.standard_normal(n) * (t % 1.1 > 0.8)
    x[: n // 10] = 0.0  # digital silence: log(0 + floor)
    return np.round(np.clip(x, -1, 0.99997) * 32768).astype(np.int16)


def _python(fe: FrontEnd, pcm: np.ndarray) -> np.ndarray:
    return fe(fe.fix_length(pcm / 32768.0)[None])[0, 0]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    """Within 1% of an int8 input step (max |x| / 127): float32 against float64. On pure tones the
    FFT's float32 rounding in the quiet bands shows most (up to 0.6% of a step, 512-point, lifter)."""
    step = np.abs(want).max() / 127
    assert np.abs(got - want).max() < 0.01 * step, (np.abs(got - want).max(), step)


@needs_arm
def test_the_mcu_c_folder_ships_the_front_end_and_it_builds_with_the_model_header(
    exported_run, tmp_path
):
    """First in this file: the session's exported_run is made (export forks children) before this
    file's numpy work; a fork after it once hung in a child (futex wait) on this box."""
    from devices.mcu_files import write_model_c

    exports = json.loads((exported_run / "export" / "exports.json").read_text())
    art = next(a for a in exports["artifacts"] if a["precision"] == "int8-full")
    card = json.loads((exported_run / "student" / "card.json").read_text())
    card["input"]["frontend"] = _fe("recipe").card()
    paths = write_model_c(exported_run / "export" / art["file"], tmp_path, art, card, None)
    assert [p.name for p in paths] == ["model_data.h", "model_data.c", *frontend_c.SOURCES,
                                       frontend_c.HEADER]  # fmt: skip
    assert "UTTERANCE_NORM 1: subtract from each coefficient its mean" in paths[0].read_text()
    (tmp_path / "use.c").write_text(
        '#include "model_data.h"\n#include "tinyship_frontend.h"\n'
        "int score(tinyship_fe_t *st, const int16_t *hop, int8_t *input) {\n"
        "  tinyship_fe_push(st, hop, TINYSHIP_MODEL_FE_HOP);\n"
        "  return tinyship_fe_window(st, input, TINYSHIP_MODEL_INPUT_SCALE,"
        " TINYSHIP_MODEL_INPUT_ZERO_POINT);\n}\n"
    )
    for src in ("use.c", "tinyship_frontend.c", "model_data.c"):
        res = _arm_compile(tmp_path / src, tmp_path / f"{src}.o")
        assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_tables_are_the_python_front_ends(name):
    """The C's tables are computed by devices/frontend_c.py (the devices stage may not import
    distill) with the Python front-end's formulas: value for value the same."""
    fe = _fe(name)
    t = frontend_c.tables(fe.card())
    assert np.array_equal(t["hann"] * 32768.0, fe.window())
    assert np.array_equal(t["mel_matrix"], fe.mel_matrix())
    mel = np.zeros_like(t["mel_matrix"])
    at = 0
    for m, (a, n) in enumerate(zip(t["mel_first"], t["mel_count"])):
        mel[m, a : a + n] = t["mel_weight"][at : at + n]
        at += n
    assert np.array_equal(mel, fe.mel_matrix()) and at == np.count_nonzero(fe.mel_matrix())
    if fe.features == "mfcc":
        np.testing.assert_allclose(
            t["dct"], fe.dct_matrix() * fe.lifter_weights()[:, None], atol=1e-15
        )
    else:
        assert "dct" not in t and "tinyship_fe_dct" not in frontend_c.header(fe.card())
    rev = t["bitrev"]  # an involution: k's bits reversed
    assert sorted(rev) == list(range(fe.n_fft // 2)) and all(rev[rev] == np.arange(len(rev)))


def test_a_front_end_the_c_does_not_compute_is_refused():
    card = _fe("recipe").card()
    with pytest.raises(UserError, match=r"n_fft is 96; .* power of two"):
        frontend_c.tables({**card, "n_fft": 96})
    with pytest.raises(UserError, match=r"frames is 50 but clip_samples, n_fft and hop give 49"):
        frontend_c.tables({**card, "frames": 50})
    with pytest.raises(UserError, match=r"lacks hop.*Re-run distill"):
        frontend_c.tables({k: v for k, v in card.items() if k != "hop"})


@needs_gcc
def test_c_features_equal_the_python_ones_on_fsdd_test_clips(shared_data, tmp_path):
    """Why (issue 36): no front-end shipped, and one written from the header alone had to guess the
    normalization. The shipped C, host-compiled, against the Python front-end on 13 test clips
    (tests/devices/frontend_core.py runs all 300)."""
    fe = _fe("recipe")
    c = fc.HostFrontEnd(fe.card(), tmp_path)
    root = shared_data / "fsdd" / "recordings"
    paths = fc.split_clips(root, n=12) + [root / "5_lucas_1.wav"]  # the longest: 9,178 samples
    pcm = [fc.read_pcm(p, fe.sample_rate)[1] for p in paths]
    assert max(map(len, pcm)) > fe.clip_samples > min(map(len, pcm))  # cropped and padded
    py = np.stack([_python(fe, x) for x in pcm])
    got = []
    for x in pcm:
        c.clip(x)
        got.append(c.features())
    got = np.stack(got)
    assert np.abs(got - py).max() < 1e-4  # float32 C vs float64 numpy: 3.7e-5 on all 300 clips
    from ground.tflm import quantize

    scale, zp = float(np.abs(py).max() / 120), -3
    want = quantize(py, scale, zp, "int8").reshape(len(pcm), -1)
    q = []
    for x in pcm:
        c.clip(x)
        q.append(c.window(scale, zp))
    diff = np.abs(np.stack(q).astype(int) - want)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 2  # a value on a rounding tie, at most


@needs_gcc
@pytest.mark.parametrize("name", ["lifter", "logmel_start_long_hop"])
def test_other_front_ends_short_and_long_clips(name, tmp_path):
    fe = _fe(name)
    c = fc.HostFrontEnd(fe.card(), tmp_path)
    for n in (fe.clip_samples // 3, fe.clip_samples, 2 * fe.clip_samples + 7):  # pad, as is, crop
        x = _audio(n, n, fe.sample_rate)
        c.clip(x)
        _close(c.features(), _python(fe, x))


@needs_gcc
def test_a_stream_pushed_in_any_chunks_scores_the_python_window_of_its_last_frames(tmp_path):
    """Streaming: frames every hop from the stream's start into a ring; the window is the Python
    front-end's features of the clip_samples that end with the newest frame's window."""
    fe = _fe("recipe")
    c = fc.HostFrontEnd(fe.card(), tmp_path)
    stream = _audio(3 * fe.clip_samples + 555, 1)
    sizes = [1, 7, 160, 333, 50, 1024]
    at, checked, i = 0, 0, 0
    while at < len(stream):
        n = sizes[i % len(sizes)]
        made = c.push(stream[at : at + n])
        at, i = min(at + n, len(stream)), i + 1
        frames = 0 if at < fe.n_fft else 1 + (at - fe.n_fft) // fe.hop
        assert c.ready() == (frames >= fe.frames)
        if not c.ready():
            buf = np.zeros(fe.coefficients * fe.frames, np.int8)
            assert c.lib.tinyship_fe_window(c.state, buf.ctypes.data, 1.0, 0) == -1
            continue
        if made and i % 5 == 0:
            start = fe.hop * (frames - fe.frames)
            want = _python(fe, stream[start : start + fe.clip_samples])
            _close(c.features(), want)
            checked += 1
    assert checked >= 6


def _arm_compile(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["arm-none-eabi-gcc", "-std=c99", *M4F, "-Os", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    return subprocess.run(
        [*cmd, *extra, "-c", str(src), "-o", str(out)], capture_output=True, text=True
    )


@needs_arm
def test_the_c_compiles_for_the_m4f_in_float32_with_no_library_call_but_logf(tmp_path):
    """float32 on the FPU: no double-precision helper (__aeabi_d*), from the C library only logf."""
    frontend_c.write(tmp_path, _fe("recipe").card())
    res = _arm_compile(tmp_path / "tinyship_frontend.c", tmp_path / "fe.o", "-Wdouble-promotion")
    assert res.returncode == 0, res.stderr
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "fe.o")],
                               capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert {s for s in undefined if s != "U"} - {"memcpy", "memmove", "memset"} == {"logf"}


def test_front_end_instructions_are_told_apart_by_symbol():
    """The log filter behind the front-end's counts: blocks of other functions are not counted."""
    from devices.firmware import icount
    from devices.firmware.frontend import PARTS, _only

    log = (
        "IN: tinyship_fe_power\n0x00000400:  6801       ldr      r1, [r0]\n"
        "0x00000402:  4770       bx       lr\n\n"
        "IN: _fread_r\n0x00000500:  6842       ldr      r2, [r0, #4]\n\n"
        "IN: __ieee754_logf\n0x00000600:  4770       bx       lr\n\n"
        "Trace 0: 0x7f00 [00000000/00000400/00000110/ff000200] tinyship_fe_power\n"
        "Trace 0: 0x7f00 [00000000/00000500/00000110/ff000200] _fread_r\n"
        "Trace 0: 0x7f00 [00000000/00000600/00000110/ff000200] __ieee754_logf\n"
        "Trace 0: 0x7f00 [00000000/00000400/00000110/ff000200] tinyship_fe_power\n"
    ).splitlines(keepends=True)
    assert icount.parse_lines(log).instructions == 6
    clip = icount.parse_lines(_only(log, PARTS["clip"]))
    assert clip.instructions == 5 and "_fread_r" not in clip.by_symbol
    assert icount.parse_lines(_only(log, PARTS["window"])).instructions == 0


# ---- on the emulated Cortex-M4F: a real KWS int8 file, made quickly (its accuracy is irrelevant)


@pytest.fixture(scope="session")
def kws_run(shared_data, tmp_path_factory) -> Path:
    """recipes/kws_fsdd.yaml with one quick teacher and a few epochs, distilled and exported."""
    import distill
    import export

    recipe = yaml.safe_load((REPO / "recipes" / "kws_fsdd.yaml").read_text())
    recipe["data"]["path"] = str(shared_data / "fsdd" / "recordings")
    recipe["teacher"]["library"] = ["summary_logreg"]
    recipe["transfer"]["size_multiplier"] = 1
    recipe["train"].update(epochs=3, patience=3)
    run = tmp_path_factory.mktemp("kws") / "run"
    distill.run(recipe, run, progress=False)
    export.run(run, formats=["tflite"], precisions=["int8-full"], thresholds={"agreement": 0.5},
               force=True, progress=False)  # fmt: skip
    return run


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="no qemu-system-arm")
def test_pcm_in_labels_out_on_the_emulated_m4f(kws_run, tmp_path):
    """Why (issues 35, 36): the front-end never ran on a core. 24 test clips go in as raw PCM; the
    firmware's features, int8 inputs and labels match the host pipeline's, its outputs are byte-
    identical with host TFLite Micro's on its own inputs, and the front-end's work is counted."""
    from devices.firmware import bundle, cores, emulate, model_ops, sources

    host = fc.host_pipeline(kws_run, fc.split_clips(n=24))
    got = fc.core_figures(kws_run, host, count=True)
    rec = got["record"]
    assert rec["bit_exact"]["identical"] and rec["bit_exact"]["inputs"] == 24
    assert got["features_max_abs_diff"] < 1e-4 and got["int8_inputs_max_abs_diff"] <= 1
    assert got["vs_host"]["litert_builtin"]["agreement"] >= 23 / 24
    fe = rec["frontend"]
    assert fe["clip"]["instructions"] > 48 * fe["frame"]["instructions"] > 0
    assert fe["streaming_inference"]["cycles"] == fe["frame"]["cycles"] + fe["window"]["cycles"]
    assert (
        "tinyship_fe_power" in fe["by_function"] and fe["with_file_io"] > fe["clip"]["instructions"]
    )
    assert rec["model"]["instructions"] > 10_000 and rec["model"]["latency_ms"] > 0
    card = json.loads((kws_run / "student" / "card.json").read_text())["input"]["frontend"]
    # the cost model every record uses (devices/frontend.py) reproduces this fresh count within its
    # stated held-out error plus the clip-to-clip spread its table records (rounding is data-driven)
    from devices import frontend as F

    doc = F.cycle_table()
    est = F.cycles(card, "cortex-m4f", card["clip_samples"] / card["frames"], doc)
    for part, e in zip(("frame", "window"), est):
        tol = doc["cores"]["cortex-m4f"]["error"]["held_out"][part] + doc["spread"]["max"][part]
        assert abs(e / fe[part]["cycles"] - 1) <= tol, (part, e, fe[part]["cycles"], tol)
    assert (
        rec["ram"]["frontend_state"]
        == fc.HostFrontEnd(card, tmp_path / "h").lib.tinyship_fe_state_bytes()
    )
    assert rec["frontend_flash"]["tables"] > 4 * card["n_fft"]  # window, twiddles, mel, DCT
    # the ship bundle's folder builds the same firmware with `make FRONTEND=1` and runs PCM
    tflite, _ = fc.int8_spec(kws_run)
    core = cores.get("cortex-m4f")
    ops = model_ops.read(tflite)
    fw, lib = emulate.build(tflite, core, ops)
    folder = tmp_path / "bundle"
    bundle.write(folder, fw.folder, tflite, "cortex-m4f", 24, card)
    make = ["make", "-s", "FRONTEND=1", f"TFLM_LIB={lib.archive}"]
    subprocess.run(make, cwd=folder, check=True, capture_output=True)
    sources.write_pcm_rows(folder / sources.IN_FILE, host.pcm[:3])
    res = subprocess.run([*make, "run"], cwd=folder, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    assert "TINYSHIP done" in res.stdout + res.stderr
    out = np.frombuffer((folder / sources.OUT_FILE).read_bytes(), np.int8).reshape(3, -1)
    want = host.outputs["litert_builtin"][:3]
    assert (out.argmax(axis=1) == want.argmax(axis=1)).all()
