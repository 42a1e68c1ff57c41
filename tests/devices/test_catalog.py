import pytest

from devices.catalog import FIGURES, load_catalog
from ground.errors import UserError

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


def _stack_yaml(runs: str) -> str:
    return "devices: {}\nstacks:\n  s:\n    title: test stack\n    runs:\n" + runs


def test_catalog_stacks_are_cited_and_name_known_models_and_boards():
    assert CATALOG.default_stack == "tflm-cmsis-nn"
    for st in CATALOG.stacks.values():
        assert st.runs and st.calibration
        for r in st.runs:
            assert r["model"] in CATALOG.reference_models and r["board"] in CATALOG.devices
            assert "MLPerf Tiny" in r["source"] and "results.txt" in r["source"]


def test_unknown_stack_lists_the_known_ones():
    with pytest.raises(UserError, match=r"unknown stack 'tflm'.*tflm-cmsis-nn.*--stack"):
        CATALOG.stack("tflm")


def test_bad_stack_run_is_named(tmp_path):
    extra = tmp_path / "stack.yaml"
    extra.write_text(
        _stack_yaml(
            "      - {model: kws, board: cortex-m4f-stm32l4r5, inferences_per_s: -5, source: paper}\n"
        )
    )
    with pytest.raises(
        UserError, match=r"stack 's' runs\[0\]\.inferences_per_s must be a positive"
    ):
        load_catalog(extra)
    extra.write_text(
        _stack_yaml(
            "      - {model: kws, board: no-such-board, inferences_per_s: 5, source: paper}\n"
        )
    )
    with pytest.raises(UserError, match=r"runs\[0\]\.board is 'no-such-board'"):
        load_catalog(extra)


def test_catalog_json_lists_each_devices_stacks(capsys):
    """Every MCU lists every stack with its own published runs (or the transfer); others none."""
    import json

    from devices.__main__ import main

    assert main(["catalog", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == set(CATALOG.devices)
    for name, d in doc.items():
        if CATALOG.devices[name].cls != "mcu":
            assert d["stacks"] == []
            continue
        assert [s["name"] for s in d["stacks"]] == list(CATALOG.stacks)
        assert [s["name"] for s in d["stacks"] if s["default"]] == [CATALOG.default_stack]
        for s in d["stacks"]:
            own = [r for r in CATALOG.stacks[s["name"]].runs if r["board"] == name]
            assert s["runs_on_this_board"] == own
            assert ("calibrated on published" in s["transfer"]) == bool(own)
