"""MCU ship format: model_data.h/.c from a real full-int8 .tflite compile with gcc and arm-none-eabi-gcc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devices.mcu_files import _c_string, write_model_c
from ground.errors import UserError

COMPILERS = {
    "gcc": ["gcc", "-std=c99"],
    "arm-none-eabi-gcc": ["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb"],
}


def _int8_artifact(run: Path) -> dict:
    exports = json.loads((run / "export" / "exports.json").read_text())
    arts = [
        a
        for a in exports["artifacts"]
        if a["format"] == "tflite" and a["precision"] == "int8-full" and not a.get("error")
    ]
    if not arts:
        pytest.skip("the fixture run has no int8-full .tflite")
    return arts[0]


@pytest.mark.parametrize("compiler", list(COMPILERS))
def test_c_pair_compiles_warning_free(exported_run, tmp_path, compiler):
    if shutil.which(COMPILERS[compiler][0]) is None:
        pytest.skip(f"{compiler} not installed (make system-deps installs it)")
    art = _int8_artifact(exported_run)
    card = json.loads((exported_run / "student" / "card.json").read_text())
    card["labels"] = ['say "yes"', "no\\", "ünï"]  # quoting and non-ASCII survive as C strings
    from distill.audio import FrontEnd

    card["input"]["frontend"] = FrontEnd(hop=160, n_mfcc=13, lifter=22).card()
    tfl = exported_run / "export" / art["file"]
    h, c = write_model_c(tfl, tmp_path, art, card, art.get("tflm_arena_bytes"))[:2]
    text = c.read_text()
    assert f"tinyship_model_data_len = {tfl.stat().st_size}u" in text
    assert "__attribute__((aligned(16)))" in text and '"say \\"yes\\""' in text
    header = h.read_text()
    q = art["input"]["quantization"]
    assert f"TINYSHIP_MODEL_INPUT_ZERO_POINT ({q['zero_point']})" in header
    assert "TINYSHIP_MODEL_FE_HOP 160u" in header
    assert "tinyship_model_fe_lifter[13]" in header and "normalizes inside its graph" in header
    if art.get("tflm_arena_bytes"):
        assert f"TINYSHIP_MODEL_ARENA_BYTES {art['tflm_arena_bytes']}u" in header
    # a user of the header: every declaration is used, so -Wall -Werror checks them
    (tmp_path / "main.c").write_text(
        '#include "model_data.h"\n'
        "unsigned int probe(void) {\n"
        "  return tinyship_model_data_len + tinyship_model_data[0] + TINYSHIP_MODEL_ARENA_BYTES\n"
        "    + (unsigned int)(tinyship_model_labels[0][0]) + TINYSHIP_MODEL_FE_N_FFT\n"
        "    + (unsigned int)tinyship_model_fe_mel_edges_hz[0]"
        " + (unsigned int)tinyship_model_fe_lifter[1];\n}\n"
    )
    for src in (c, tmp_path / "main.c"):
        res = subprocess.run(
            [
                *COMPILERS[compiler],
                "-c",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-o",
                "/dev/null",
                str(src),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr


def test_refuses_a_float_file(exported_run, tmp_path):
    exports = json.loads((exported_run / "export" / "exports.json").read_text())
    art = next(a for a in exports["artifacts"] if a["precision"] == "fp32")
    with pytest.raises(UserError, match=r"model_data.c is for full-int8 .tflite files"):
        write_model_c(exported_run / "export" / art["file"], tmp_path, art, {}, None)


def test_c_string_escapes():
    assert _c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert _c_string("é") == '"\\303\\251"'
