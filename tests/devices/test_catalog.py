import pytest

from devices.catalog import FIGURES, load_catalog
from tinyship.errors import UserError

CATALOG = load_catalog()


@pytest.mark.parametrize("name", list(CATALOG.devices))
def test_every_figure_has_a_source(name):
    dev = CATALOG.get(name)
    for key in FIGURES:
        f = dev.figures[key]
        assert f.source.strip(), f"{name}.{key} has no source"
        if f.value is None:
            assert "not found" in f.source or "not applicable" in f.source, (
                f"{name}.{key} null without 'not found'"
            )
        assert f.value != "detect", f"{name}.{key} left undetected"
    assert dev.budget, f"{name} has no default budget"


def test_catalog_covers_required_classes():
    classes = {d.cls for d in CATALOG.devices.values()}
    assert {"host", "sbc", "phone", "pda", "mcu"} <= classes
    assert len(CATALOG.devices) >= 6


def test_host_is_detected():
    host = CATALOG.get("host")
    assert host.value("cores") >= 1 and host.value("ram_bytes") > 0


def test_unknown_device_lists_known_ones():
    with pytest.raises(UserError, match=r"unknown device 'rpi9'.*Known devices: host, .*rpi4"):
        CATALOG.get("rpi9")


def test_extra_catalog_adds_device(tmp_path):
    extra = tmp_path / "extra.yaml"
    src = {k: {"value": None, "source": "not found"} for k in FIGURES}
    import yaml

    extra.write_text(
        yaml.safe_dump(
            {
                "devices": {
                    "my-board": {
                        "class": "sbc",
                        **src,
                        "formats": ["tflite"],
                        "budget": {"latency_ms": 5},
                    }
                }
            }
        )
    )
    cat = load_catalog(extra)
    assert cat.get("my-board").formats == ["tflite"]


def test_extra_catalog_figure_without_source_is_refused(tmp_path):
    extra = tmp_path / "bad.yaml"
    extra.write_text("devices:\n  b:\n    class: sbc\n" + "".join(f"    {k}: 3\n" for k in FIGURES))
    with pytest.raises(UserError, match="must be a mapping with 'value' and 'source'"):
        load_catalog(extra)


def test_catalog_cli_prints(capsys):
    from devices.__main__ import main

    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "cortex-m4f-stm32l4r5" in out and "source:" in out


def _mcu_yaml(published: str) -> str:
    figures = "\n".join(
        f"    {k}: {{value: {v}, source: test}}"
        for k, v in {
            "core": "M",
            "clock_mhz": 100,
            "cores": 1,
            "simd": "none",
            "int8_macs_per_cycle": 2,
            "fp32_macs_per_cycle": 1,
            "ram_bytes": 1000,
            "flash_bytes": 1000,
            "mem_bw_bytes_per_s": "null",
        }.items()
    )
    return f"devices:\n  board:\n    class: mcu\n{figures}\n    formats: [tflite]\n{published}"


def test_published_runs_give_the_int8_efficiency(tmp_path):
    """efficiency = MACs x inferences/s / (clock x MACs/cycle); geometric mean over runs; a model can be left out."""
    extra = tmp_path / "board.yaml"
    extra.write_text(
        _mcu_yaml(
            "    published:\n"
            "      - {model: a.tflite, macs: 1000000, stack: s, inferences_per_s: 20, source: paper}\n"
            "      - {model: b.tflite, macs: 4000000, stack: s, inferences_per_s: 20, source: paper}\n"
        )
    )
    dev = load_catalog(extra).get("board")
    # a: 1e6 * 20 / (100e6 * 2) = 0.1; b: 0.4; geometric mean 0.2
    assert dev.int8_efficiency()[0] == pytest.approx(0.2)
    assert dev.int8_efficiency(exclude_model="b.tflite")[0] == pytest.approx(0.1)
    assert "2 published runs" in dev.int8_efficiency()[1] and "paper" in dev.int8_efficiency()[1]
    assert dev.int8_efficiency(exclude_model="a.tflite")[0] == pytest.approx(0.4)
    assert (
        CATALOG.get("cortex-m55-alif-e7").int8_efficiency() is None
    )  # nothing published: host transfer


def test_bad_published_run_is_named(tmp_path):
    extra = tmp_path / "board.yaml"
    extra.write_text(
        _mcu_yaml(
            "    published:\n      - {model: a.tflite, macs: -5, stack: s, "
            "inferences_per_s: 20, source: paper}\n"
        )
    )
    with pytest.raises(UserError, match=r"board' published\[0\]\.macs must be a positive number"):
        load_catalog(extra)
