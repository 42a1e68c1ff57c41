"""profile FILE...: any .tflite/.onnx without a run dir; TFLite Micro measures the arena or refuses."""

import json
import shutil

import pytest

from devices import Settings
from devices.files import build_run, profile_files
from ground.errors import UserError

MCUS = ["cortex-m4f-stm32l4r5", "cortex-m7-stm32h7a3"]


def _unsupported_op_tflite(shared_data, path):
    """The AD model with its FULLY_CONNECTED opcode swapped for one TFLite Micro lacks."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(
        (shared_data / "mlperf_tiny" / "ad01_int8.tflite").read_bytes(), 0
    )
    m.operatorCodes[0].builtinCode = m.operatorCodes[0].deprecatedBuiltinCode = (
        s.BuiltinOperator.HASHTABLE_LOOKUP
    )
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(b.Output())
    return path


def test_profile_files_on_mlperf_models(shared_data, tmp_path):
    files = [shared_data / "mlperf_tiny" / n for n in ("kws_ref_model.tflite", "ad01_int8.tflite")]
    bad = _unsupported_op_tflite(shared_data, tmp_path / "unsupported.tflite")
    rep = profile_files(
        files + [bad],
        tmp_path / "out",
        devices=MCUS,
        stack="x-cube-ai",
        settings=Settings(runs=3, warmup=1),
    )
    doc = json.loads((tmp_path / "out" / "profile" / "profile.json").read_text())
    exports = json.loads((tmp_path / "out" / "export" / "exports.json").read_text())
    arts = {a["file"]: a for a in exports["artifacts"]}
    assert arts["kws_ref_model.tflite"]["precision"] == "int8-full"
    # TFLite Micro's head equals tinyship's plan of the activations, exactly
    for name in ("kws_ref_model.tflite", "ad01_int8.tflite"):
        assert (
            arts[name]["tflm_arena"]["head_bytes"]
            == doc["artifacts"][name]["peak_activation_bytes"]
        )
    recs = {(r["artifact"], r["device"]): r for r in doc["records"]}
    for name in ("kws_ref_model.tflite", "ad01_int8.tflite"):
        for dev in MCUS:
            r = recs[(name, dev)]
            assert r["method"] == "estimated" and r["latency"]["stack"] == "x-cube-ai"
            assert (
                r["ram_bytes"] == arts[name]["tflm_arena_bytes"]
            )  # TFLM's measured arena is the RAM
            assert set(r) >= {
                "artifact",
                "device",
                "method",
                "latency_ms",
                "ram_bytes",
                "flash_bytes",
                "verdict",
            }
    r = recs[("unsupported.tflite", "cortex-m4f-stm32l4r5")]
    assert r["verdict"] == "not runnable"
    assert (
        "not runnable on TFLite Micro: Didn't find op for builtin opcode 'HASHTABLE_LOOKUP'"
        in r["reasons"][0]
    )
    assert len(rep.records) == 3 * (1 + len(MCUS))  # host + the two boards, per file


def test_profile_files_refuses_bad_input(tmp_path, shared_data):
    with pytest.raises(UserError, match="not found"):
        build_run([tmp_path / "nope.tflite"], tmp_path / "o")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(UserError, match=r"suffix '\.pt'; profile FILE takes \.onnx, \.tflite"):
        build_run([tmp_path / "m.pt"], tmp_path / "o")
    f = shared_data / "mlperf_tiny" / "ad01_int8.tflite"
    build_run([f], tmp_path / "o")
    with pytest.raises(UserError, match="already exists. Pass --force"):
        build_run([f], tmp_path / "o")
    (tmp_path / "d").mkdir()
    shutil.copy(f, tmp_path / "d" / "ad01_int8.tflite")
    with pytest.raises(UserError, match="share the name 'ad01_int8.tflite'"):
        build_run([f, tmp_path / "d" / "ad01_int8.tflite"], tmp_path / "o2")


def test_cli_profile_file(shared_data, tmp_path, capsys):
    from devices.__main__ import main

    f = str(shared_data / "mlperf_tiny" / "ad01_int8.tflite")
    assert (
        main(["profile", f, "--out", str(tmp_path / "p"), "--devices", MCUS[0], "--runs", "2"]) == 0
    )
    assert (tmp_path / "p" / "profile" / "profile.json").is_file()
    with pytest.raises(UserError, match="either --run DIR .* or model FILEs"):
        main(["profile"])


def test_plan_and_tail_estimate_against_tflm_on_other_files(exported_run):
    """On the demo's int8 export (not used to set the tail coefficients): the plan equals TFLM's head
    exactly and plan + estimated tail is within 15 % of TFLM's measured total."""
    from devices import analyse
    from ground import tflm

    p = exported_run / "export" / "model.int8-full.tflite"
    a = analyse(p)
    r = tflm.run(p)
    assert a.peak_activation_bytes == r.head_bytes
    est = a.peak_activation_bytes + a.tflm_tail_estimate_bytes
    assert abs(est - r.arena_bytes) / r.arena_bytes < 0.15, (est, r.arena_bytes, r.parts)


def _tree_hashes(folder):
    from ground import rundir

    return {  # student/ and export/ (the command lock's .lock file is not the run's)
        str(p.relative_to(folder)): rundir.sha256_file(p)
        for stage in ("student", "export")
        for p in sorted((folder / stage).rglob("*"))
        if p.is_file()
    }


def test_profile_file_ships_what_it_profiled_with_a_card_read_from_the_file(
    shared_data, exported_run, tmp_path
):
    """Issue 34: profile FILE shipped nothing and its card was full of '?' and 'None {}', stated a
    float32 input for an int8 file, and said "No file fits" under a table that said it fits."""
    from tinyship.command import main

    int8 = shared_data / "mlperf_tiny" / "ad01_int8.tflite"
    onnx = exported_run / "export" / "model.fp32.onnx"
    out = tmp_path / "p"
    argv = ["profile", str(int8), str(onnx), "--run", str(out), "--devices", "host," + MCUS[0]]
    assert main([*argv, "--runs", "2", "--quiet"]) == 0
    manifest = json.loads((out / "ship" / "manifest.json").read_text())
    files = {f["file"]: f for f in manifest["files"]}
    assert set(files) == {"ad01_int8.tflite", "model.fp32.onnx"}  # both fit the host
    for name, f in files.items():
        assert (out / "ship" / name).is_file() and f["sha256"] == f["checked_sha256"]
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(int8))
    i = it.get_input_details()[0]
    spec = files["ad01_int8.tflite"]["input"]
    assert spec["dtype"] == "int8" and spec["shape"] == [int(d) for d in i["shape"]]
    assert spec["quantization"] == {
        "scale": float(i["quantization"][0]),
        "zero_point": int(i["quantization"][1]),
    }
    assert files["model.fp32.onnx"]["input"]["dtype"] == "float32"
    text = (out / "ship" / "MODEL_CARD.md").read_text()
    for bad in ("?", "None", "{}", "No file fits"):
        assert bad not in text, bad
    assert f"q = round(x / {i['quantization'][0]:.6g})" in text
    assert "| ad01_int8.tflite |" in text and "int8 [1, 640]" in text
    assert "returns finite outputs" in text  # the check it shipped under, said


def test_profile_file_with_force_never_touches_a_runs_student_or_export(
    shared_data, exported_run, tmp_path
):
    """Issue 41: `tinyship profile model.tflite --run <existing run> --force` deleted that run's
    student/ and export/. --force replaces only what the command names, and says so."""
    from tinyship.command import main

    run = tmp_path / "run"
    shutil.copytree(exported_run / "student", run / "student")
    shutil.copytree(exported_run / "export", run / "export")
    before = _tree_hashes(run)
    f = shared_data / "mlperf_tiny" / "ad01_int8.tflite"
    with pytest.raises(
        UserError, match=r"holds a tinyship run .*never a run's student/ or export/"
    ):
        main(["profile", str(f), "--run", str(run), "--force", "--quiet"])
    assert _tree_hashes(run) == before
    # profile FILE's own folder: --force replaces what the earlier profile FILE wrote
    own = tmp_path / "own"
    build_run([f], own)
    with pytest.raises(UserError, match="written by an earlier profile FILE"):
        build_run([f], own)
    build_run([f], own, force=True)
    assert json.loads((own / "student" / "card.json").read_text())["origin"] == "profile FILE"
