from pathlib import Path

import pytest

from devices.runners import RUNNERS, get
from devices.runners.adb import benchmark_command, parse_benchmark_model
from ground.errors import UserError

DATA = Path(__file__).parent / "data"

# (file, Inference (avg) us, Init us, count, std us, memory overall MB) read off the recorded outputs
RECORDED = [
    ("benchmark_model_riscv64_qemu_mobilenet_v1.txt", 2.95034e6, 17187, 50, 109798, 46.0859),
    ("benchmark_model_mi11_yolov5s_fp32_cpu.txt", 220000, 1430, 50, 6795, 140.508),
    ("benchmark_model_mi11_yolov5s_int8_cpu_tf24.txt", 95788.3, 1779, 50, 1284, 36.9883),
]


@pytest.mark.parametrize("name,avg,init,count,std,mem", RECORDED)
def test_adb_parser_on_real_recorded_outputs(name, avg, init, count, std, mem):
    r = parse_benchmark_model((DATA / name).read_text())
    assert r["inference_avg_us"] == pytest.approx(avg)
    assert r["init_us"] == pytest.approx(init)
    assert r["count"] == count and r["std_us"] == pytest.approx(std)
    assert r["memory_mb"]["overall"] == pytest.approx(mem)


def test_adb_parser_reports_a_failed_benchmark():
    with pytest.raises(UserError, match="no 'Inference timings in us' line.*Benchmarking failed"):
        parse_benchmark_model((DATA / "benchmark_model_failed_nnapi.txt").read_text())


def test_recorded_outputs_have_named_sources():
    sources = (DATA / "SOURCES.md").read_text()
    for f in DATA.glob("*.txt"):
        assert f.name in sources and "https://github.com/" in sources


def test_adb_command_quotes_paths():
    cmd = benchmark_command(
        "/data/local/tmp/tinyship/model.tflite",
        "/data/local/tmp/tinyship/benchmark_model",
        2,
        3,
        10,
    )
    assert (
        "--num_threads=2" in cmd
        and "--enable_op_profiling=false" in cmd
        and "--warmup_runs=3" in cmd
    )


def test_runner_registry():
    get("host")
    assert {"host", "ssh", "adb"} <= set(RUNNERS)
    with pytest.raises(
        UserError, match="unknown runner 'bluetooth'; known runners: adb, host, ssh"
    ):
        get("bluetooth")


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "ad01_int8.tflite"])
def test_host_runner_percentiles(shared_data, model):
    m = get("host")(shared_data / "mlperf_tiny" / model, runs=30, warmup=3, pin_core=0)
    assert 0 < m.p50_ms <= m.p90_ms <= m.p99_ms
    assert m.spread_ms >= 0 and m.spread_kind == "iqr"
    assert m.runs == 30 and m.pin_core == 0 and "litert" in m.runtime
    assert (
        m.extra["input"]["dtype"] == "int8"
    )  # int8-full input, quantized with the model's own scale


def test_host_runner_bad_model(tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(b"nope")
    with pytest.raises(UserError, match="benchmark on host"):
        get("host")(p, runs=2, warmup=0)


def test_runner_registry_refuses_a_duplicate_name():
    from devices.runners import register
    from ground.errors import InternalError

    get("host")
    with pytest.raises(InternalError, match="device runner 'host' registered twice"):
        register("host", device_class="host", reference_device="host", runtimes=(), settings=())(
            lambda model: None
        )
