"""`tinyship summary` shows each recommended figure's error band beside it (issues 35 and 37)."""

from __future__ import annotations

from tinyship.summary import devices_summary


def _record(verdict: str, band: dict | None) -> dict:
    return {
        "artifact": "model.int8-full.tflite", "format": "tflite", "precision": "int8-full",
        "device": "cortex-m7-stm32h7a3", "device_class": "mcu", "method": "estimated",
        "latency_ms": 4.25, "ram_bytes": 6300, "flash_bytes": 33600,
        "budget": {"latency_ms": 20.0, "ram_kb": 128, "flash_kb": 512}, "verdict": verdict,
        "reasons": [], "latency_band": band, "within_error_allowed": False,
    }  # fmt: skip


def test_the_band_is_beside_the_latency():
    band = {"low_ms": 3.22, "high_ms": 8.33, "source": "estimator bands"}
    text = devices_summary({"records": [_record("fits", band)]}, None, width=200)
    assert "4.25 ms est. [3.22-8.33]" in text


def test_no_band_no_brackets():
    text = devices_summary({"records": [_record("fits", None)]}, None, width=200)
    assert "4.25 ms est." in text and "[" not in text.split("4.25 ms est.")[1].split("\n")[0]
